//! Per-service work spread over the machine's cores for large projects: services are
//! independent in the passes that use this, and a 5,000-service file spends most of its load
//! time in them.

use std::num::NonZeroUsize;

/// Below this many items the work stays on the calling thread: spawning costs more.
pub(crate) const MIN_PARALLEL: usize = 512;

/// Run `f` over `items` in order on up to `available_parallelism` threads, in contiguous
/// chunks, each with its own accumulator from `init`; accumulators come back in item order.
/// On failure the error of the earliest failing item is returned, as a sequential run would.
pub(crate) fn try_chunks<T, A, E, I, F>(items: &mut [T], init: I, f: F) -> Result<Vec<A>, E>
where
    T: Send,
    A: Send,
    E: Send,
    I: Fn() -> A + Sync,
    F: Fn(&mut T, &mut A) -> Result<(), E> + Sync,
{
    let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let run = |chunk: &mut [T]| -> Result<A, E> {
        let mut acc = init();
        for item in chunk {
            f(item, &mut acc)?;
        }
        Ok(acc)
    };
    if threads < 2 || items.len() < MIN_PARALLEL {
        return run(items).map(|a| vec![a]);
    }
    let size = items.len().div_ceil(threads.min(8));
    let results: Vec<Result<A, E>> = std::thread::scope(|scope| {
        let mut chunks = items.chunks_mut(size);
        let first = chunks.next();
        let handles: Vec<_> = chunks.map(|c| scope.spawn(|| run(c))).collect();
        let mut out = Vec::with_capacity(handles.len() + 1);
        out.extend(first.map(&run));
        for h in handles {
            // A panic in a worker is a bug; carry it to the caller as sequential code would.
            out.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        out
    });
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_first_error_match_a_sequential_run() {
        let mut items: Vec<usize> = (0..5000).collect();
        let sums = try_chunks(
            &mut items,
            Vec::new,
            |i: &mut usize, acc: &mut Vec<usize>| -> Result<(), usize> {
                acc.push(*i);
                *i *= 2;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(sums.concat(), (0..5000).collect::<Vec<_>>());
        assert_eq!(items[4999], 9998);
        let err = try_chunks(
            &mut items,
            || (),
            |i: &mut usize, _| {
                if *i >= 2000 { Err(*i) } else { Ok(()) }
            },
        )
        .unwrap_err();
        assert_eq!(err, 2000);
    }
}

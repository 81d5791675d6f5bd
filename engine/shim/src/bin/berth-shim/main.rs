//! berth-shim: supervises one container process (placeholder until the loop lands).

fn main() {
    eprintln!("berth-shim: not implemented yet");
    std::process::exit(1);
}

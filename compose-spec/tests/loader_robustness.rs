//! Mutated Compose files must give an error or a model, never a panic or a hang: every
//! fixture of compose-go's loader testdata and of the merge suite is cut, spliced and sprinkled
//! with YAML and Compose syntax (deterministically, so failures reproduce).

use std::path::{Path, PathBuf};

use compose_spec::{LoadOptions, load_project};

fn fixtures() -> Option<Vec<PathBuf>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/compose");
    if !root.is_dir() {
        println!("conformance data not found at {}; skipping", root.display());
        return None;
    }
    let mut out = Vec::new();
    let mut stack = vec![
        root.join("compose-go/loader/testdata"),
        root.join("compose-go-extracted/merge"),
        root.join("compose-go-extracted/loader-tests"),
    ];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                out.push(p);
            }
        }
    }
    out.sort();
    Some(out)
}

/// A small xorshift generator: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SNIPPETS: &[&str] = &[
    ":",
    "-",
    "[",
    "]",
    "{",
    "}",
    "\n",
    "  ",
    "!reset ",
    "!override ",
    "${X}",
    "${X:?e}",
    "$$",
    "*a",
    "&a ",
    "<<: ",
    "extends: x\n",
    "include: [x]\n",
    "depends_on: [a]\n",
    "'",
    "\"",
    "#",
    "ports: ['80:80']\n",
    "volumes: ['./a:/b']\n",
    "\t",
    "~",
    "null",
    "0x1F",
    "- !reset\n",
];

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut b: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(3) {
            0 if !b.is_empty() => {
                let end = (at + rng.below(20)).min(b.len());
                b.drain(at.min(end)..end);
            }
            1 => {
                let s = SNIPPETS[rng.below(SNIPPETS.len())];
                for (i, c) in s.chars().enumerate() {
                    b.insert(at.min(b.len()) + i, c);
                }
            }
            _ => {
                if !b.is_empty() {
                    let i = rng.below(b.len());
                    let j = rng.below(b.len());
                    b.swap(i, j);
                }
            }
        }
    }
    b.into_iter().collect()
}

#[test]
fn mutated_fixtures_never_panic() {
    let Some(files) = fixtures() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut err) = (0, 0);
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for _ in 0..30 {
            let yaml = mutate(&text, &mut rng);
            let o = LoadOptions {
                config_files: vec![PathBuf::from("-")],
                stdin: Some(yaml.clone()),
                project_name: Some("fuzz".into()),
                project_directory: f.parent().map(Path::to_path_buf),
                cwd: Some(dir.path().to_path_buf()),
                ..LoadOptions::default()
            };
            let r = std::panic::catch_unwind(|| load_project(&o).map(|_| ()));
            match r {
                Ok(Ok(())) => ok += 1,
                Ok(Err(_)) => err += 1,
                Err(_) => panic!("panic loading a mutation of {}:\n{yaml}", f.display()),
            }
        }
    }
    println!(
        "robustness: {} mutations, {ok} loaded, {err} rejected, 0 panics",
        ok + err
    );
}

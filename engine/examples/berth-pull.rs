//! `berth-pull ROOT REFERENCE`: pulls one image into an engine root (used by the pull
//! benchmark in tests/bench/images-pull.sh).

use berth_engine::image::registry::RegistryOptions;
use berth_engine::image::{ImageService, ProgressSink};
use berth_engine::state::StateStore;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: berth-pull ROOT REFERENCE");
        std::process::exit(2);
    }
    let root = Path::new(&args[1]);
    std::fs::create_dir_all(root)?;
    let state = StateStore::open(&root.join("state.redb"))?;
    let images = ImageService::open(root, state, RegistryOptions::default())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let img = rt.block_on(images.pull(&args[2], None, ProgressSink::none()))?;
    println!("{}", img.id);
    Ok(())
}

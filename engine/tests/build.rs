//! Builds without RUN: FROM image/scratch/stage, ARG before FROM, COPY/ADD with flags,
//! globs, .dockerignore, heredocs, config instructions, multi-stage, --target, cache.

mod common;

use berth_engine::image::build::builder::BuildOptions;
use common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;

fn find(
    eng: &Engine,
    img: &berth_engine::state::ImageRecord,
    path: &str,
) -> Option<std::path::PathBuf> {
    // Top-most layer that has the file wins (no whiteouts in these images).
    img.layers
        .iter()
        .rev()
        .map(|l| eng.images.snapshots().path(&l.chain_id).join(path))
        .find(|p| p.exists())
}

fn read_from(eng: &Engine, img: &berth_engine::state::ImageRecord, path: &str) -> Option<Vec<u8>> {
    find(eng, img, path).and_then(|p| fs::read(p).ok())
}

#[test]
fn build_multi_stage_with_cache() {
    let eng = Engine::new(None);
    let base = TarBuilder::new()
        .dir("bin")
        .file("bin/busybox", b"not really", 0o755)
        .finish();
    eng.images.import(&base[..], Some("base:v1")).unwrap();

    let ctx = eng.dir.path().join("ctx");
    fs::create_dir_all(ctx.join("dir/sub")).unwrap();
    fs::write(ctx.join("a.txt"), "A").unwrap();
    fs::write(ctx.join("dir/sub/b.txt"), "B").unwrap();
    fs::write(ctx.join("skip.log"), "L").unwrap();
    fs::write(ctx.join(".dockerignore"), "*.log\n").unwrap();
    let inner = TarBuilder::new().file("inside.txt", b"I", 0o644).finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &inner).unwrap();
    fs::write(ctx.join("arch.tar.gz"), gz.finish().unwrap()).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "ARG BASE=base:v1\n\
         FROM ${BASE} AS first\n\
         ENV GREETING=hello DIR=/opt\n\
         WORKDIR $DIR\n\
         COPY a.txt ./\n\
         COPY --chown=1000:1001 --chmod=0600 dir/ sub/\n\
         COPY . /ctx/\n\
         ADD arch.tar.gz /extracted/\n\
         LABEL version=\"1.0\"\n\
         EXPOSE 8080\n\
         CMD [\"sh\"]\n\
         \n\
         FROM scratch\n\
         ARG X=world\n\
         COPY --from=first /opt/a.txt /a.txt\n\
         COPY <<EOT /hello.txt\n\
         hi $X\n\
         EOT\n",
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h = rt.handle().clone();
    let opts = BuildOptions {
        context: ctx.clone(),
        tags: vec!["built:v1".into()],
        ..Default::default()
    };
    let r = eng.images.build(&opts, &h).unwrap();
    assert_eq!(eng.images.resolve("built:v1").unwrap().id, r.image.id);
    assert_eq!(read_from(&eng, &r.image, "a.txt").unwrap(), b"A");
    assert_eq!(
        read_from(&eng, &r.image, "hello.txt").unwrap(),
        b"hi world\n"
    );
    assert_eq!(r.image.layers.len(), 2);

    let first = eng
        .images
        .build(
            &BuildOptions {
                target: Some("first".into()),
                ..opts.clone()
            },
            &h,
        )
        .unwrap();
    assert_eq!(
        first.executed_steps, 0,
        "everything cached from the first build"
    );
    let img = first.image;
    assert_eq!(read_from(&eng, &img, "opt/a.txt").unwrap(), b"A");
    assert_eq!(read_from(&eng, &img, "extracted/inside.txt").unwrap(), b"I");
    assert!(
        read_from(&eng, &img, "ctx/skip.log").is_none(),
        ".dockerignore"
    );
    assert_eq!(read_from(&eng, &img, "ctx/a.txt").unwrap(), b"A");
    let m = fs::metadata(find(&eng, &img, "opt/sub/sub/b.txt").unwrap()).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (1000, 1001, 0o600));
    let cfg: serde_json::Value =
        serde_json::from_slice(&eng.images.store().read(&img.id).unwrap()).unwrap();
    let c = &cfg["config"];
    assert_eq!(c["WorkingDir"], "/opt");
    assert_eq!(c["Labels"]["version"], "1.0");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object());
    assert_eq!(c["Cmd"][0], "sh");
    assert!(
        c["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "GREETING=hello")
    );

    // A cached rebuild, then a content change.
    let t = std::time::Instant::now();
    let again = eng.images.build(&opts, &h).unwrap();
    eprintln!("fully cached build: {} ms", t.elapsed().as_millis());
    assert_eq!(again.executed_steps, 0);
    assert_eq!(again.image.id, r.image.id);
    fs::write(ctx.join("a.txt"), "Z").unwrap();
    let changed = eng.images.build(&opts, &h).unwrap();
    assert!(changed.executed_steps > 0);
    assert_eq!(read_from(&eng, &changed.image, "a.txt").unwrap(), b"Z");
    let nocache = eng
        .images
        .build(
            &BuildOptions {
                no_cache: true,
                ..opts.clone()
            },
            &h,
        )
        .unwrap();
    assert_eq!(
        nocache.cached_steps, 1,
        "only the ARG step counts as cached"
    );
}

#[test]
fn build_errors_name_the_line() {
    let eng = Engine::new(None);
    let ctx = eng.dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY missing.txt /\n").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let opts = BuildOptions {
        context: ctx.clone(),
        ..Default::default()
    };
    let e = eng.images.build(&opts, rt.handle()).unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    fs::write(ctx.join("Dockerfile"), "FROM scratch\n\nBOGUS x\n").unwrap();
    let e = eng.images.build(&opts, rt.handle()).unwrap_err();
    assert!(e.to_string().contains("line 3"), "{e}");
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY ../etc/passwd /\n",
    )
    .unwrap();
    assert!(eng.images.build(&opts, rt.handle()).is_err());
    assert!(eng.images.state().images().unwrap().is_empty());
}

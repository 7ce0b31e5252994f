//! Runs every file of the fuzz corpus (`fuzz/corpus/scan`) through the fuzz body, so the
//! corpus is a regression suite under plain `cargo test`.

#[test]
fn fuzz_corpus_runs_clean() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/scan");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/scan exists") {
        let path = entry.expect("dir entry").path();
        let data = std::fs::read(&path).expect("readable corpus file");
        iacscope_shared::fuzzing::fuzz_scan(&data);
        n += 1;
    }
    assert!(n >= 10, "the corpus has {n} files");
}

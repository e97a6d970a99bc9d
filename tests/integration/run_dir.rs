//! A user's files are never deleted: `--overwrite` replaces only a ganzoo run and only
//! its own files; one writer per run; a refused start leaves nothing behind. Every
//! case runs inside a temporary folder, never against a real system or home folder.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Device;
use ganzoo::data::ToyDistribution;
use ganzoo::train::{DataSource, Family, RunDir, Silent, TrainConfig, TrainError, Trainer};

/// Every file under `dir` (relative path → contents; symbolic links as `-> target`).
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(rel, format!("-> {}", std::fs::read_link(&path).unwrap().display()).into_bytes());
            } else if meta.is_dir() {
                out.insert(rel + "/", Vec::new());
                walk(root, &path, out);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A folder of a user's files: some text, a nested folder, a `config.toml` of their own.
fn user_folder(dir: &Path) {
    std::fs::create_dir_all(dir.join("notes")).unwrap();
    std::fs::write(dir.join("thesis.tex"), "\\documentclass{article}").unwrap();
    std::fs::write(dir.join("notes/todo.txt"), "finish chapter 3").unwrap();
    std::fs::write(dir.join("config.toml"), "[my]\nsetting = 1\n").unwrap();
    std::fs::create_dir(dir.join("checkpoints")).unwrap();
    std::fs::write(dir.join("checkpoints/model.pt"), [1u8, 2, 3]).unwrap();
}

fn toy_config(iters: u64) -> TrainConfig {
    let mut c = TrainConfig::preset(Family::Gan, DataSource::Toy(ToyDistribution::EightGaussians));
    (c.iters, c.batch_size, c.log_every, c.sample_every, c.checkpoint_every) = (Some(iters), 16, 1, 100, 1);
    c
}

fn train_toy(dir: &Path, iters: u64) {
    let mut t = Trainer::new(toy_config(iters), None, RunDir::create(dir, false).unwrap(), Device::Cpu).unwrap();
    t.run(&mut Silent).unwrap();
}

fn refusal(path: &Path, overwrite: bool) -> String {
    match RunDir::create(path, overwrite) {
        Err(e @ TrainError::Refused { .. }) => e.to_string(),
        Err(other) => panic!("expected a refusal for {}, got {other}", path.display()),
        Ok(_) => panic!("{} was accepted", path.display()),
    }
}

#[test]
fn overwrite_refuses_a_folder_of_user_files_and_deletes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let mine = root.path().join("mine");
    user_folder(&mine);
    let before = snapshot(&mine);
    let msg = refusal(&mine, true);
    assert!(msg.contains("not a ganzoo run") && msg.contains("thesis.tex"), "{msg}");
    assert!(!msg.contains("--overwrite"), "the refusal must not suggest --overwrite: {msg}");
    assert_eq!(refusal(&mine, false), msg);
    assert_eq!(snapshot(&mine), before);
}

#[test]
fn overwrite_refuses_dot_dotdot_symlinks_and_files() {
    let root = tempfile::tempdir().unwrap();
    let mine = root.path().join("mine");
    user_folder(&mine);
    std::fs::create_dir(mine.join("empty")).unwrap();
    let before = snapshot(root.path());
    // `mine/.`, `mine/empty/..`: the folder itself, reached another way.
    for path in [mine.join("."), mine.join("empty").join("..")] {
        assert!(refusal(&path, true).contains("thesis.tex"), "{}", path.display());
    }
    let link = root.path().join("link");
    std::os::unix::fs::symlink(&mine, &link).unwrap();
    assert!(refusal(&link, true).contains("thesis.tex"));
    let through = link.join("notes");
    assert!(refusal(&through, true).contains("todo.txt"));
    let file = mine.join("thesis.tex");
    assert!(refusal(&file, true).contains("not a folder"));
    std::fs::remove_file(&link).unwrap();
    assert_eq!(snapshot(root.path()), before);
}

#[test]
fn overwrite_replaces_only_a_runs_own_files() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    train_toy(&run, 3);
    assert!(run.join(".ganzoo-run").is_file() && run.join("checkpoints/latest").is_file());
    assert!(refusal(&run, false).contains("--overwrite"), "an existing run points at --resume / --overwrite");
    // A user's own files inside the run survive its replacement.
    std::fs::write(run.join("my-notes.txt"), "lr too high?").unwrap();
    std::fs::write(run.join("samples/favourite.png"), [9u8; 4]).unwrap();
    std::fs::write(run.join("checkpoints/exported.onnx"), [7u8; 4]).unwrap();
    std::fs::write(run.join("tb/projector_config.pbtxt"), "embeddings {}").unwrap();
    // Names that only look like the run's: a kept checkpoint, `sample --out` beside them.
    let lookalikes = [
        "checkpoints/step-best/generator.safetensors",
        "checkpoints/latest.npy",
        "samples/iter-best.png",
        "eval/my-summary.json",
    ];
    std::fs::create_dir(run.join("checkpoints/step-best")).unwrap();
    // The replaced run's evaluations go with it (they are of its generator).
    std::fs::create_dir(run.join("eval")).unwrap();
    std::fs::write(run.join("eval/step-00000003-n500.json"), "{}").unwrap();
    for name in lookalikes {
        std::fs::write(run.join(name), [5u8; 4]).unwrap();
    }
    let events = |run: &Path| -> Vec<i64> {
        let files = std::fs::read_dir(run.join("tb")).unwrap().map(|e| e.unwrap().path());
        let events = files.filter(|p| p.to_string_lossy().contains("events.out.tfevents."));
        events.flat_map(|p| ganzoo::tensorboard::read_events(&p).unwrap()).map(|e| e.step).collect()
    };
    assert_eq!(events(&run).iter().max(), Some(&3));
    let mut t = Trainer::new(toy_config(1), None, RunDir::create(&run, true).unwrap(), Device::Cpu).unwrap();
    t.run(&mut Silent).unwrap();
    assert_eq!(std::fs::read_to_string(run.join("my-notes.txt")).unwrap(), "lr too high?");
    assert!(run.join("samples/favourite.png").is_file() && run.join("checkpoints/exported.onnx").is_file());
    assert!(run.join("tb/projector_config.pbtxt").is_file(), "a user's file in tb/ stays");
    for name in lookalikes {
        assert!(run.join(name).is_file(), "{name} was removed");
    }
    assert!(!run.join("eval/step-00000003-n500.json").exists(), "the old run's evaluation stayed");
    assert_eq!(events(&run).iter().max(), Some(&1), "the old run's event files are gone");
    assert!(!run.join("checkpoints/step-00000003").exists(), "the old run's checkpoints are gone");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 1, "the new run's metrics only");
}

#[test]
fn a_run_has_one_writer_and_any_number_of_readers() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    train_toy(&run, 2);
    let writer = RunDir::open_for_writing(&run).unwrap();
    for attempt in [RunDir::open_for_writing(&run).map(|_| ()), RunDir::create(&run, true).map(|_| ())] {
        let err = attempt.unwrap_err();
        assert!(matches!(err, TrainError::InUse { pid: Some(p), .. } if p == std::process::id()), "{err}");
        assert!(err.to_string().contains(&format!("in use by pid {}", std::process::id())), "{err}");
    }
    let (reader, _) = RunDir::open(&run).unwrap();
    assert!(ganzoo::train::TrainedGenerator::load(reader.path(), &Device::Cpu).is_ok(), "readers still read");
    assert!(run.join("checkpoints/latest").is_file(), "a refused writer removed nothing");
    drop(writer);
    assert!(RunDir::open_for_writing(&run).is_ok(), "the lock goes with its holder");
}

#[test]
fn a_writer_waits_out_a_page_rewrite_and_a_rewrite_never_waits() {
    use ganzoo::train::lock::{RunLock, MOMENT};
    use std::time::{Duration, Instant};
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    train_toy(&run, 2);
    // `eval --run` and `report RUN` hold the lock while they rewrite the page: a
    // `train --resume` started meanwhile waits for it instead of being refused.
    let rewrite = RunLock::try_acquire(&run).unwrap();
    let done = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(rewrite);
    });
    let writer = RunDir::open_for_writing(&run).expect("the page's moment passes");
    done.join().unwrap();
    // While a writer has the run, a page's rewrite is skipped at once, and another
    // writer is refused after the moment.
    let asked = Instant::now();
    assert!(!ganzoo::train::report::refresh(&run).unwrap());
    assert!(asked.elapsed() < MOMENT, "a rewrite does not wait for a writer");
    let asked = Instant::now();
    let err = RunDir::open_for_writing(&run).unwrap_err();
    assert!(matches!(err, TrainError::InUse { .. }), "{err}");
    assert!(asked.elapsed() >= MOMENT, "a writer waits the moment before it gives up");
    drop(writer);
}

#[test]
fn a_runs_own_entries_are_told_from_a_users_by_name() {
    use ganzoo::train::run_dir::owner_of;
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    train_toy(&run, 2);
    let canonical = std::fs::canonicalize(&run).unwrap();
    let own = [
        "config.toml",
        "report.html",
        "metrics.jsonl.tmp",
        "data.json",
        ".lock",
        "samples/iter-00000002.png",
        "samples/iter-00000500.png",
        "checkpoints/latest",
        "checkpoints/step-00000002",
        "checkpoints/step-00000003.tmp",
        "checkpoints/step-00000002/generator.safetensors",
        "checkpoints/step-00000002/mine.json",
        "tb/events.out.tfevents.1.host",
        "eval/step-00000002-n500.json",
    ];
    for name in own {
        assert_eq!(owner_of(&run.join(name)), Some(canonical.clone()), "{name}");
    }
    let users = [
        "notes.html",
        "samples/iter-best.png",
        "checkpoints/step-best",
        "checkpoints/latest.npy",
        "eval/mine.json",
        "checkpoints/step-best/a.json",
    ];
    for name in users {
        assert_eq!(owner_of(&run.join(name)), None, "{name}");
    }
    assert_eq!(owner_of(&run.join("samples/../config.toml")), Some(canonical), "the folder resolved");
    // The same names outside a run are anyone's.
    let other = root.path().join("other");
    std::fs::create_dir_all(other.join("samples")).unwrap();
    for name in ["config.toml", "report.html", "samples/iter-00000002.png"] {
        assert_eq!(owner_of(&other.join(name)), None, "{name}");
    }
}

#[test]
fn a_refused_start_leaves_no_half_made_run() {
    let root = tempfile::tempdir().unwrap();
    let fresh = root.path().join("a/b/run");
    let mut run = RunDir::create(&fresh, false).unwrap();
    run.discard();
    assert!(!fresh.exists(), "the folder it made is gone");
    // An empty folder the user made stays, empty.
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let mut bad = toy_config(2);
    bad.batch_size = 0;
    let run = RunDir::create(&empty, false).unwrap();
    let mut keep = run.clone();
    assert!(Trainer::new(bad, None, run, Device::Cpu).is_err());
    keep.discard();
    assert!(snapshot(&empty).is_empty(), "{:?}", snapshot(&empty));
    // Numbered names are claimed atomically and never reuse a taken one.
    let base = root.path().join("runs/gan-8gaussians");
    let names: Vec<_> = (0..3).map(|_| RunDir::create_numbered(&base).unwrap().path().to_path_buf()).collect();
    assert_eq!(names[1], root.path().join("runs/gan-8gaussians-2"));
    assert_eq!(names[2], root.path().join("runs/gan-8gaussians-3"));
}

#[test]
fn leftovers_of_interrupted_writes_are_removed_at_the_next_start() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    train_toy(&run, 2);
    let ck = run.join("checkpoints");
    std::fs::create_dir(ck.join("step-00000003.tmp")).unwrap();
    std::fs::create_dir(ck.join("step-00000002.old")).unwrap();
    std::fs::write(ck.join("latest.tmp"), "step-00000003").unwrap();
    std::fs::create_dir_all(run.join("eval")).unwrap();
    let left = [
        "checkpoints/latest.tmp",
        "config.toml.tmp",
        "curves.png.tmp",
        "report.html.tmp",
        "samples/iter-00000003.png.tmp",
        "samples/iter-00000003.png.partial",
        "eval/step-00000003.json.tmp",
    ];
    // Names the run never writes that way stay, whatever they end in.
    let theirs = [
        "notes.tmp",
        "samples/mine.png.tmp",
        "eval/summary.json.tmp",
        "samples/iter-00000003.png.bak",
        "samples/iter-best.png.tmp",
        "checkpoints/step-best.old",
        "checkpoints/latest.old",
    ];
    for name in left.iter().chain(&theirs) {
        std::fs::write(run.join(name), "half").unwrap();
    }
    let (dir, mut config) = RunDir::open(&run).unwrap();
    config.iters = Some(3);
    let t = Trainer::resume(dir, config, None, Device::Cpu).unwrap();
    for name in ["checkpoints/step-00000003.tmp", "checkpoints/step-00000002.old"].iter().chain(&left) {
        assert!(!run.join(name).exists(), "{name} is still there");
    }
    for name in theirs {
        assert!(run.join(name).exists(), "{name} was removed");
    }
    assert_eq!(t.iteration(), 2);
}

/// Two evaluations of one run writing their reports at once: each report is whole and
/// neither write fails (both used to write through the one `step-N.json.tmp`, so one
/// renamed the other's half-written file or found it gone). A start's clean-up leaves an
/// evaluation's temporary file alone while the evaluation holds `eval/.lock`.
#[test]
fn evaluations_writing_at_once_never_share_a_temporary_file() {
    use ganzoo::train::run_dir::write_eval_report;
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    train_toy(&run, 2);
    let report = |c: u8| vec![c; 256 << 10];
    let writers: Vec<_> = [b'a', b'b']
        .into_iter()
        .map(|c| {
            let run = run.clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    write_eval_report(&run, "step-00000002.json", &report(c)).unwrap();
                }
            })
        })
        .collect();
    writers.into_iter().for_each(|w| w.join().unwrap());
    let written = std::fs::read(run.join("eval/step-00000002.json")).unwrap();
    assert!(written == report(b'a') || written == report(b'b'), "a report mixes both writers");
    let tmp = run.join("eval/step-00000002.json.tmp");
    std::fs::write(&tmp, "mid-write").unwrap();
    let held = std::fs::File::open(run.join("eval/.lock")).unwrap();
    held.lock().unwrap();
    let (dir, _) = RunDir::open_for_writing(&run).unwrap();
    assert!(dir.clean_leftovers().unwrap().is_empty());
    assert!(tmp.exists(), "an evaluation's file was removed while it wrote it");
    drop(held);
    assert_eq!(dir.clean_leftovers().unwrap(), [tmp]);
}

/// Resuming with a length shorter than the newest checkpoint is refused with nothing
/// changed: it used to fall back to an older checkpoint, as for a damaged one, and drop
/// the metrics past it.
#[test]
fn a_resume_never_shortens_a_run() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    train_toy(&run, 4);
    let pristine = snapshot(&run);
    for iters in [2, 3] {
        let (dir, mut config) = RunDir::open(&run).unwrap();
        config.iters = Some(iters);
        let err =
            Trainer::resume(dir, config, None, Device::Cpu).err().expect("a shorter run must be refused").to_string();
        let ck = run.join("checkpoints/step-00000004");
        let said = format!(
            "has trained 4 iterations, 0.00 epochs (checkpoint {}), more than the {iters} iterations",
            ck.display()
        );
        assert!(err.contains(&said) && err.contains("pass --iters 4 or more"), "{err}");
        let now = snapshot(&run);
        assert!(now.iter().all(|(k, v)| k == ".lock" || pristine.get(k) == Some(v)), "the run changed");
    }
    let (dir, config) = RunDir::open(&run).unwrap();
    assert_eq!(Trainer::resume(dir, config, None, Device::Cpu).unwrap().iteration(), 4);
}

/// A resume keeps `metrics.jsonl`'s lines as they were written, byte for byte, and only
/// drops those past the checkpoint: it used to rewrite every line from its parsed value,
/// and serde_json's default float parsing is off by an ulp on some numbers (a WGAN run's
/// `d_loss` 0.0009612115100026131 came back as …132), and fields it does not know were lost.
#[test]
fn a_resume_keeps_the_metrics_lines_byte_for_byte() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    train_toy(&run, 4);
    let metrics = run.join("metrics.jsonl");
    let text = std::fs::read_to_string(&metrics).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 4);
    let d_loss = lines[0].split("\"d_loss\":").nth(1).unwrap().split(',').next().unwrap().to_string();
    lines[0] = lines[0].replacen(&d_loss, "0.0009612115100026131", 1);
    lines[1] = lines[1].replacen('{', "{\"note\":\"added by hand\",", 1);
    let written = lines.join("\n") + "\n";
    std::fs::write(&metrics, &written).unwrap();
    let resume = |iters: u64| {
        let (dir, mut config) = RunDir::open(&run).unwrap();
        config.iters = Some(iters);
        Trainer::resume(dir, config, None, Device::Cpu).unwrap().iteration()
    };
    assert_eq!(resume(4), 4);
    assert_eq!(std::fs::read_to_string(&metrics).unwrap(), written, "a resume at the last line changed the lines");
    // From the older checkpoint (the newest damaged), the lines past it go, the rest stay as written.
    std::fs::write(run.join("checkpoints/step-00000004/generator.safetensors"), b"damaged").unwrap();
    assert_eq!(resume(4), 3);
    let kept: String = lines[..3].iter().map(|l| l.clone() + "\n").collect();
    assert_eq!(std::fs::read_to_string(&metrics).unwrap(), kept);
    // A last line cut short by an interrupted append goes; a whole one only gains its newline.
    std::fs::write(&metrics, kept.clone() + "{\"iteration\":4,\"ep").unwrap();
    assert_eq!(resume(4), 3);
    assert_eq!(std::fs::read_to_string(&metrics).unwrap(), kept);
    std::fs::write(&metrics, kept.trim_end()).unwrap();
    assert_eq!(resume(4), 3);
    assert_eq!(std::fs::read_to_string(&metrics).unwrap(), kept);
}

/// `metrics.jsonl` is streamed from a regular file only, each line bounded: a FIFO
/// hung `report` and `--resume`, and a link to `/dev/zero` read until memory ran out.
#[cfg(unix)]
#[test]
fn a_metrics_file_that_is_not_one_is_refused_not_read_forever() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    train_toy(&run, 2);
    let metrics = run.join("metrics.jsonl");
    let read = |what: &str| {
        let (tx, rx) = std::sync::mpsc::channel();
        let dir = RunDir::open(&run).unwrap().0;
        std::thread::spawn(move || tx.send(dir.read_metrics(u64::MAX).map(|m| m.len())));
        let result = rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap_or_else(|_| panic!("{what}: hung"));
        result.map_err(|e| e.to_string())
    };
    assert_eq!(read("the run's own"), Ok(2));
    std::fs::remove_file(&metrics).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(&metrics).status().unwrap().success());
    assert!(read("a FIFO").unwrap_err().ends_with("metrics.jsonl: is not a regular file, not a metrics file"));
    std::fs::remove_file(&metrics).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &metrics).unwrap();
    assert!(read("/dev/zero").unwrap_err().contains("is not a regular file"));
    std::fs::remove_file(&metrics).unwrap();
    std::fs::write(&metrics, vec![b'x'; (1 << 20) + 10]).unwrap();
    assert!(read("one long line").unwrap_err().contains("line 1 is longer than 1048576 bytes: not a metrics file"));
    std::fs::remove_file(&metrics).unwrap();
    assert_eq!(read("none"), Ok(0));
    // The report's other inputs: a FIFO as warnings.log is passed over, not waited on.
    let warnings = run.join("warnings.log");
    assert!(std::process::Command::new("mkfifo").arg(&warnings).status().unwrap().success());
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = run.clone();
    std::thread::spawn(move || tx.send(ganzoo::train::report::rewrite(&dir).map_err(|e| e.to_string())));
    rx.recv_timeout(std::time::Duration::from_secs(20)).expect("report hung on a FIFO").unwrap();
    // A checkpoint's weights: a FIFO is refused, not opened (the open would wait for a writer).
    let weights = run.join("checkpoints/step-00000002/generator.safetensors");
    std::fs::remove_file(&weights).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(&weights).status().unwrap().success());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tx.send(
            ganzoo::train::checkpoint::load_tensors(&weights, &Device::Cpu, 1 << 30)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        )
    });
    let e = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("hung on a FIFO").unwrap_err();
    assert!(e.contains("is not a regular file, not a safetensors file"), "{e}");
}

#[test]
fn a_checkpoint_whose_counters_contradict_the_run_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    train_toy(&run, 3);
    let steps: Vec<_> = ["step-00000002", "step-00000003"].iter().map(|s| run.join("checkpoints").join(s)).collect();
    let edit = |field: &str, value: u64| {
        for dir in &steps {
            let path = dir.join("state.json");
            let mut state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            state[field] = value.into();
            std::fs::write(&path, state.to_string()).unwrap();
        }
    };
    let resume_error = || {
        let (dir, config) = RunDir::open(&run).unwrap();
        Trainer::resume(dir, config, None, Device::Cpu).err().expect("resume must fail").to_string()
    };
    let pristine = snapshot(&run);
    edit("iteration", 3000);
    let err = resume_error();
    assert!(err.contains("generator steps for 3000 iterations") && err.contains("state.json"), "{err}");
    edit("optimizer_g_steps", 3000);
    assert!(resume_error().contains("critic steps"), "{}", resume_error());
    edit("optimizer_d_steps", 3000);
    let err = resume_error();
    assert!(err.contains("at iteration 3000 but metrics.jsonl's last line before it is iteration 3"), "{err}");
    edit("iteration", 3);
    edit("optimizer_g_steps", 3);
    edit("optimizer_d_steps", 3);
    assert!(snapshot(&run).iter().all(|(k, v)| k.ends_with("state.json") || pristine.get(k) == Some(v)));
    // Metrics written out of order (two writers) are an error too.
    let metrics = run.join("metrics.jsonl");
    let text = std::fs::read_to_string(&metrics).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(0, 1);
    std::fs::write(&metrics, lines.join("\n") + "\n").unwrap();
    assert!(resume_error().contains("out of order"), "{}", resume_error());
}

/// Each critic step reads one real batch, so a checkpoint's data position follows from
/// its critic steps; a position edited or damaged apart from them (which would silently
/// change the data order, or overflow the epoch counter) is refused.
#[test]
fn a_checkpoint_whose_data_position_contradicts_its_steps_is_refused() {
    use ganzoo::data::{DatasetSpec, KnownDataset};
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    let mut c = TrainConfig::preset(Family::Gan, DataSource::Images(DatasetSpec::Known(KnownDataset::Mnist)));
    (c.epochs, c.iters, c.batch_size, c.log_every, c.sample_every) = (None, Some(6), 16, 1, 100);
    (c.checkpoint_every, c.keep_checkpoints) = (1, 0);
    let images = || crate::common::digits(64, 1);
    let mut t = Trainer::new(c, Some(images()), RunDir::create(&run, false).unwrap(), Device::Cpu).unwrap();
    t.run(&mut Silent).unwrap();
    drop(t);
    // 64 images in batches of 16: 4 batches an epoch; epoch 0 ends at batch 4, not (1, 0).
    let state = |step: u64| run.join(format!("checkpoints/step-{step:08}/state.json"));
    let position = |step| {
        let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(state(step)).unwrap()).unwrap();
        (s["position"]["epoch"].as_u64().unwrap(), s["position"]["batch"].as_u64().unwrap())
    };
    let written: Vec<_> = (1..=6).map(position).collect();
    assert_eq!(written, [(0, 1), (0, 2), (0, 3), (0, 4), (1, 1), (1, 2)]);
    let resume = || {
        let (dir, mut config) = RunDir::open_for_writing(&run).unwrap();
        config.iters = Some(7);
        Trainer::resume(dir, config, Some(images()), Device::Cpu).map(|t| t.iteration())
    };
    let set = |step, epoch: u64, batch: u64| {
        let path = state(step);
        let mut s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        s["position"] = serde_json::json!({ "epoch": epoch, "batch": batch });
        std::fs::write(&path, s.to_string()).unwrap();
    };
    let before = snapshot(&run);
    for (epoch, batch) in [(u64::MAX, 4), (0, 99), (0, 6), (2, 0), (0, u64::MAX)] {
        for step in 1..=6 {
            set(step, epoch, batch);
        }
        let err = resume().expect_err("a contradicting position was resumed").to_string();
        assert!(err.contains("state.json: the data stream stands at"), "{err}");
        assert!(err.contains("but 6 critic steps read 6 batches and leave it at epoch 1, batch 2"), "{err}");
    }
    for (step, &(epoch, batch)) in (1..=6).zip(&written) {
        set(step, epoch, batch);
    }
    // Refused before anything changed: the same files, and only the edited ones differ.
    let after = snapshot(&run);
    assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
    assert!(after.iter().all(|(k, v)| k.ends_with("state.json") || before[k] == *v));
    // Only the newest damaged: the resume falls back to the one before it.
    set(6, 0, 6);
    assert_eq!(resume().unwrap(), 5);
    set(6, 1, 2);

    // A toy run counts its batches the same way, in one endless epoch.
    let toy = root.path().join("toy");
    train_toy(&toy, 3);
    let toy_state = toy.join("checkpoints/step-00000003/state.json");
    let mut s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&toy_state).unwrap()).unwrap();
    assert_eq!(s["position"], serde_json::json!({ "epoch": 0, "batch": 3 }));
    s["position"]["batch"] = 4.into();
    std::fs::write(&toy_state, s.to_string()).unwrap();
    std::fs::remove_dir_all(toy.join("checkpoints/step-00000002")).unwrap();
    let (dir, config) = RunDir::open(&toy).unwrap();
    let err = Trainer::resume(dir, config, None, Device::Cpu).err().expect("resumed").to_string();
    assert!(err.contains("stands at epoch 0, batch 4, but 3 critic steps read 3 batches"), "{err}");
}

/// The library records a run's images (`data.json`, without the folder only a caller
/// knows) and resumes only on them: other images are refused before the run changes,
/// and a run without the record gets one.
#[test]
fn a_run_records_its_images_and_resumes_only_on_them() {
    use ganzoo::data::{DatasetSpec, KnownDataset};
    use ganzoo::train::data_record::DataRecord;
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    let mut c = TrainConfig::preset(Family::Gan, DataSource::Images(DatasetSpec::Known(KnownDataset::Mnist)));
    (c.epochs, c.iters, c.batch_size, c.log_every, c.sample_every, c.checkpoint_every) = (None, Some(2), 16, 1, 100, 1);
    let images = |seed| crate::common::digits(64, seed);
    let mut t = Trainer::new(c, Some(images(1)), RunDir::create(&run, false).unwrap(), Device::Cpu).unwrap();
    t.run(&mut Silent).unwrap();
    drop(t);
    assert_eq!(DataRecord::read(&run).unwrap(), Some(DataRecord::of(&images(1), None)));
    let resume = |seed| {
        let (dir, mut config) = RunDir::open_for_writing(&run).unwrap();
        config.iters = Some(3);
        Trainer::resume(dir, config, Some(images(seed)), Device::Cpu)
    };
    let before = snapshot(&run);
    let err = resume(2).err().unwrap().to_string();
    assert!(err.contains("resuming would change the data order") && err.contains("64 images of 1x28x28"), "{err}");
    assert_eq!(snapshot(&run), before, "a refused resume changed the run");
    resume(1).unwrap().run(&mut Silent).unwrap();
    std::fs::remove_file(run.join("data.json")).unwrap();
    drop(resume(1).unwrap());
    assert_eq!(DataRecord::read(&run).unwrap(), Some(DataRecord::of(&images(1), None)), "an older run gets one");
}

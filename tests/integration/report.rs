//! What a run shows: labelled charts, `report.html` (every image it references exists),
//! TensorBoard events that parse and read back what `metrics.jsonl` holds, failures in
//! the report (collapse warnings: `train.rs`), and the page comparing runs.

use std::path::Path;

use candle_core::Device;
use ganzoo::data::ToyDistribution;
use ganzoo::tensorboard::proto::{Content, SessionStatus, What};
use ganzoo::tensorboard::read_events;
use ganzoo::train::compare::{comparison_html, relative};
use ganzoo::train::data_record::DataRecord;
use ganzoo::train::report::{evenly_spaced, RunStatus, RunView};
use ganzoo::train::{DataSource, Family, Metrics, RunDir, Silent, TrainConfig, Trainer};

fn toy(family: Family, iters: u64) -> TrainConfig {
    let mut c = TrainConfig::preset(family, DataSource::Toy(ToyDistribution::EightGaussians));
    (c.batch_size, c.iters, c.epochs) = (32, Some(iters), None);
    (c.log_every, c.sample_every, c.checkpoint_every, c.eval_every) = (5, 10, 10, Some(10));
    c
}

fn train(config: TrainConfig, out: &Path) {
    let mut t = Trainer::new(config, None, RunDir::create(out, false).unwrap(), Device::Cpu).unwrap();
    t.run(&mut Silent).unwrap();
}

fn metrics(run: &Path) -> Vec<Metrics> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn event_files(run: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(run.join("tb")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn a_run_writes_labelled_charts_a_report_and_tensorboard_events() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("wgan-gp-toy");
    train(toy(Family::WganGp, 20), &run);

    // Charts: losses, critic, throughput (no D(x) for a critic) in a 2×2 figure; the
    // measurements in a 3×2 one (W1, modes, high-quality share).
    let curves = image::open(run.join("curves.png")).unwrap();
    assert_eq!((curves.width(), curves.height()), (1280, 800));
    let quality = image::open(run.join("quality.png")).unwrap();
    assert_eq!((quality.width(), quality.height()), (1280, 800));

    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    for needle in
        ["<title>wgan-gp-toy", "wgan-gp on 8gaussians", "finished", "iteration 20 / 20", "critic/wasserstein_estimate"]
    {
        assert!(html.contains(needle), "report lacks {needle}");
    }
    let files = ganzoo::train::html::local_references(&html);
    for f in ["curves.png", "quality.png", "samples/iter-00000010.png", "samples/iter-00000020.png"] {
        assert!(files.iter().any(|x| x == f), "report does not show {f}: {files:?}");
    }
    for f in &files {
        assert!(run.join(f).is_file(), "report references {f}, which does not exist");
    }
    assert!(!html.contains("http-equiv=\"refresh\""), "a finished run's page does not reload");

    // TensorBoard: one file, its CRCs check out, the version first, then every logged
    // scalar equal (as f32) to metrics.jsonl's, and the sample grids as PNGs.
    let files = event_files(&run);
    assert_eq!(files.len(), 1, "{files:?}");
    let events = read_events(&files[0]).unwrap();
    assert_eq!(events[0].what, Some(What::FileVersion("brain.Event:2".into())));
    let lines = metrics(&run);
    assert_eq!(lines.len(), 4);
    let mut scalars_seen = 0;
    for m in &lines {
        let at: Vec<_> = events.iter().filter(|e| e.step == m.iteration as i64).collect();
        for (tag, value) in m.scalars("points") {
            let logged = at.iter().find_map(|e| match &e.what {
                Some(What::Summary(s)) => s.value.iter().find(|v| v.tag == tag).and_then(|v| match v.content {
                    Some(Content::SimpleValue(x)) => Some(x),
                    _ => None,
                }),
                _ => None,
            });
            assert_eq!(logged, Some(value as f32), "{tag} at {}", m.iteration);
            scalars_seen += 1;
        }
    }
    assert!(scalars_seen > 4 * 7, "losses, W, penalty, rate and the evaluation: {scalars_seen}");
    let images: Vec<(i64, i32, i32)> = events
        .iter()
        .filter_map(|e| match &e.what {
            Some(What::Summary(s)) => s.value.iter().find_map(|v| match &v.content {
                Some(Content::Image(img)) if v.tag == "samples" => {
                    assert!(img.encoded_image_string.starts_with(b"\x89PNG"));
                    Some((e.step, img.width, img.height))
                }
                _ => None,
            }),
            _ => None,
        })
        .collect();
    assert_eq!(images, vec![(10, 760, 640), (20, 760, 640)]);
}

#[test]
fn a_resumed_run_starts_a_new_event_file_at_its_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    let mut config = toy(Family::Gan, 10);
    config.eval_every = None;
    train(config, &run);
    let (dir, mut saved) = RunDir::open_for_writing(&run).unwrap();
    saved.iters = Some(20);
    let mut t = Trainer::resume(dir, saved, None, Device::Cpu).unwrap();
    t.run(&mut Silent).unwrap();
    let files = event_files(&run);
    assert_eq!(files.len(), 2, "{files:?}");
    let second = read_events(&files[1]).unwrap();
    // TensorBoard drops the first process's events past the checkpoint when it sees this.
    let start = second.iter().find_map(|e| match &e.what {
        Some(What::SessionLog(log)) => Some((e.step, log.status)),
        _ => None,
    });
    assert_eq!(start, Some((11, SessionStatus::Start as i32)));
    let steps: Vec<i64> = second.iter().filter(|e| matches!(e.what, Some(What::Summary(_)))).map(|e| e.step).collect();
    assert_eq!(steps.first(), Some(&15));
    assert_eq!(steps.last(), Some(&20));
}

#[test]
fn no_tensorboard_writes_no_events() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    let mut config = toy(Family::Gan, 5);
    (config.eval_every, config.tensorboard) = (None, false);
    train(config, &run);
    assert!(!run.join("tb").exists());
    assert!(run.join("report.html").is_file());
}

#[test]
fn the_comparison_page_holds_both_runs_side_by_side() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("runs/seed-1"), root.path().join("runs/seed-2"));
    for (dir, seed) in [(&a, 1), (&b, 2)] {
        let mut c = toy(Family::WganGp, 10);
        c.seed = seed;
        train(c, dir);
    }
    // What each trained on, where recorded (toys have no data.json; one is written here).
    let record = DataRecord { dir: None, count: 64, shape: [1, 28, 28], digest: "00000000000000ab".into() };
    record.write(&a).unwrap();
    let views = [RunView::load(&a).unwrap(), RunView::load(&b).unwrap()];
    let out = root.path().join("cmp/comparison.html");
    let html = comparison_html(&views, &out).unwrap();
    assert!(html.contains("seed-1") && html.contains("seed-2"));
    // The differing setting is marked; one the runs share is not.
    let row = |key: &str| html.lines().find(|l| l.contains(&format!(">{key}</td>"))).unwrap().to_string();
    assert!(row("seed").starts_with("<tr class=\"diff\">"), "{}", row("seed"));
    assert!(row("batch_size").starts_with("<tr><td>"), "{}", row("batch_size"));
    let images = row("training images");
    assert!(
        images.starts_with("<tr class=\"diff\">") && images.contains("64 images of 1x28x28 (digest 00000000000000ab)")
    );
    assert!(images.contains("<td>—</td>"), "{images}");
    // Links to each run's report, relative to the page; charts embedded and decodable.
    assert!(ganzoo::train::html::local_references(&html).contains(&"../runs/seed-1/report.html".to_string()));
    let charts: Vec<&str> = html.split("data:image/png;base64,").skip(1).map(|p| &p[..p.find('"').unwrap()]).collect();
    assert!(charts.len() >= 4, "generator and critic loss, W estimate, W1, modes: {}", charts.len());
    use base64::Engine as _;
    for c in charts {
        let png = base64::engine::general_purpose::STANDARD.decode(c).unwrap();
        assert_eq!(image::load_from_memory(&png).unwrap().width(), 640);
    }
}

/// The page lists `eval --run`'s reports in `eval/`, by iteration, each linked; one that
/// cannot be read is shown as such, a user's file there is not listed.
#[test]
fn the_report_lists_the_runs_evaluations() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    train(toy(Family::WganGp, 10), &run);
    let points: Vec<f32> = (0..400).map(|i| ((i * 37) % 11) as f32 / 5.0 - 1.0).collect();
    let toy = ganzoo::eval::toy::toy_metrics(ToyDistribution::EightGaussians, &points, 0).unwrap();
    let eval = run.join("eval");
    std::fs::create_dir(&eval).unwrap();
    std::fs::write(eval.join("step-00000010-n200.json"), serde_json::to_string(&toy).unwrap()).unwrap();
    std::fs::write(eval.join("step-00000005.json"), "{not json").unwrap();
    std::fs::write(eval.join("notes.json"), "{}").unwrap();
    let html = ganzoo::train::report::report_html(&RunView::load(&run).unwrap()).unwrap();
    let section = &html[html.find("<h2>Evaluations</h2>").expect("no Evaluations section")..];
    let (first, second) =
        (section.find("step-00000005.json").unwrap(), section.find("step-00000010-n200.json").unwrap());
    assert!(first < second && section.contains("unreadable: not an evaluation report"), "{section}");
    assert!(
        section.contains(&format!("W1 {}", ganzoo::train::report::Number(toy.w1))) && !section.contains("notes.json")
    );
    for link in ganzoo::train::html::local_references(&html) {
        assert!(run.join(&link).exists(), "{link}");
    }
    // Where no process writes the run, `refresh` rewrites the page; while one does, not.
    assert!(ganzoo::train::report::refresh(&run).unwrap());
    let _writer = RunDir::open_for_writing(&run).unwrap();
    assert!(!ganzoo::train::report::refresh(&run).unwrap());
}

/// FIDs against other real images or another feature network are said not to compare;
/// the same reference, or one not recorded (an older run), gives no warning.
#[test]
fn the_comparison_page_warns_when_fids_were_measured_against_other_references() {
    let root = tempfile::tempdir().unwrap();
    let runs = [root.path().join("a"), root.path().join("b")];
    for run in &runs {
        train(toy(Family::WganGp, 10), run);
    }
    let image_eval = |real: Option<&str>| {
        let reference = real.map(|r| serde_json::json!({"network": "classifier-mnist-0123", "real": r}));
        let report = serde_json::json!({
            "samples": 500, "real_samples": 1000, "features": "classifier:mnist", "fid": 12.5,
            "kid": {"mean": 0.1, "std": 0.01, "subsets": 10, "subset_size": 100},
            "precision": 0.5, "recall": 0.4, "real_split": "test", "reference": reference,
        });
        Some(ganzoo::eval::EvalReport::Image(serde_json::from_value(report).unwrap()))
    };
    let page = |reals: [Option<&str>; 2]| {
        let mut views: Vec<RunView> = runs.iter().map(|r| RunView::load(r).unwrap()).collect();
        for (view, real) in views.iter_mut().zip(reals) {
            view.history.to_mut().last_mut().unwrap().eval = image_eval(real);
        }
        comparison_html(&views, &root.path().join("cmp.html")).unwrap()
    };
    let warning = "measured against different references";
    assert!(!page([Some("aaaa"), Some("aaaa")]).contains(warning));
    assert!(!page([Some("aaaa"), None]).contains(warning));
    let html = page([Some("aaaa"), Some("bbbb")]);
    assert!(html.contains("last evaluations in training were measured against different references"), "{html}");
    assert!(html.contains("real images aaaa (test)") && html.contains("real images bbbb"));
    // The reports of `eval --run` (eval/) have a column of their own, checked the same way.
    for (run, real) in runs.iter().zip(["cccc", "dddd"]) {
        std::fs::create_dir_all(run.join("eval")).unwrap();
        let Some(ganzoo::eval::EvalReport::Image(report)) = image_eval(Some(real)) else { unreachable!() };
        std::fs::write(run.join("eval/step-00000010-n500.json"), serde_json::to_string(&report).unwrap()).unwrap();
    }
    let html = page([None, None]);
    assert!(
        html.contains("FID 12.500 · KID 0.10000 · precision 0.50000 · recall 0.40000 (step-00000010-n500.json)"),
        "{html}"
    );
    assert!(html.contains("latest eval reports were measured against different references") && html.contains("cccc"));
    assert!(!html.contains("last evaluations in training were"));
}

#[test]
fn a_failed_run_shows_in_the_report_then_and_later() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    let mut config = toy(Family::WganGp, 2);
    (config.eval_every, config.checkpoint_every) = (None, 1);
    train(config, &run);
    let (dir, mut saved) = RunDir::open_for_writing(&run).unwrap();
    saved.iters = Some(50);
    for opt in [&mut saved.optimizer_g, &mut saved.optimizer_d] {
        *opt = ganzoo::train::Optimizer::Adam { lr: 1e38, beta1: 0.5, beta2: 0.9 };
    }
    crate::common::pretend_trained_with(&run, &saved);
    let err = Trainer::resume(dir, saved, None, Device::Cpu).unwrap().run(&mut Silent).unwrap_err();
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("Training failed.") && html.contains("non-finite"), "{err}");
    let warnings = std::fs::read_to_string(run.join("warnings.log")).unwrap();
    assert!(warnings.contains(&err.to_string()));
    // Read back from disk later (no writer), the page keeps the warning.
    let view = RunView::load(&run).unwrap();
    assert_eq!(view.status, RunStatus::Failed(err.to_string()));
    let again = ganzoo::train::report::report_html(&view).unwrap();
    assert!(again.contains("Training failed.") && again.contains("non-finite"), "{again}");
    // Trained on again, the run no longer reads as failed.
    let (dir, mut saved) = RunDir::open_for_writing(&run).unwrap();
    saved.optimizer_g = ganzoo::train::Optimizer::Adam { lr: 1e-4, beta1: 0.5, beta2: 0.9 };
    saved.optimizer_d = saved.optimizer_g;
    saved.iters = Some(3);
    crate::common::pretend_trained_with(&run, &saved);
    Trainer::resume(dir, saved, None, Device::Cpu).unwrap().run(&mut Silent).unwrap();
    // Finished, though no logged step reached 3 (every 5th is logged).
    assert_eq!(RunView::load(&run).unwrap().status, RunStatus::Finished);
    // A run stopped without a word (killed: no record) short of its length reads as
    // stopped; an unreadable record counts as none.
    std::fs::remove_file(run.join("ending.json")).unwrap();
    assert_eq!(RunView::load(&run).unwrap().status, RunStatus::Stopped);
    std::fs::write(run.join("ending.json"), "{not json").unwrap();
    assert_eq!(RunView::load(&run).unwrap().status, RunStatus::Stopped);
    std::fs::write(run.join("ending.json"), r#"{"status":"interrupted"}"#).unwrap();
    assert_eq!(RunView::load(&run).unwrap().status, RunStatus::Interrupted);
}

#[test]
fn small_pieces() {
    assert_eq!(evenly_spaced(3, 12), vec![0, 1, 2]);
    assert_eq!(evenly_spaced(100, 5), vec![0, 25, 50, 74, 99]);
    assert_eq!(evenly_spaced(13, 12).len(), 12);
    assert_eq!(relative(Path::new("/a/b/run/report.html"), Path::new("/a/c/cmp.html")), "../b/run/report.html");
    assert_eq!(relative(Path::new("/a/run/report.html"), Path::new("/a/cmp.html")), "run/report.html");
    assert_eq!(
        ganzoo::train::html::escape("<a href=\"x\">'&'</a>"),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
    assert_eq!(ganzoo::train::html::url("samples/iter 1#.png"), "samples/iter%201%23.png");
}

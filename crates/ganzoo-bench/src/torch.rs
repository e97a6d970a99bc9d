//! The PyTorch reference (`throughput.py --worker CASE` from
//! `../shared/bench/torchref`), run as a child process like ganzoo's own workers.

use std::path::{Path, PathBuf};
use std::process::Command;

use ganzoo_kernels::Isa;
use serde::Deserialize;

use crate::model::BenchModel;
use crate::ops::LayerShape;
use crate::throughput::{Target, TimingPlan};
use crate::{BenchError, Result};

/// Where the reference lives and which Python runs it.
#[derive(Debug, Clone)]
pub struct TorchRef {
    pub python: PathBuf,
    pub dir: PathBuf,
    pub threads: usize,
    /// The instruction set PyTorch's CPU kernels are held to ([`isa_env`]); `None`
    /// leaves PyTorch its own choice, the CPU's best.
    pub held_to: Option<Isa>,
}

/// The environment that holds PyTorch's CPU kernels to `isa`: ATen's dispatch level
/// and oneDNN's instruction-set ceiling (oneDNN runs the convolutions and GEMMs).
/// With `GANZOO_ISA` forcing ganzoo below the CPU's best, both sides then run as on a
/// CPU without the wider instructions.
pub fn isa_env(isa: Isa) -> [(&'static str, &'static str); 2] {
    match isa {
        Isa::Scalar => [("ATEN_CPU_CAPABILITY", "default"), ("DNNL_MAX_CPU_ISA", "SSE41")],
        Isa::Avx2 => [("ATEN_CPU_CAPABILITY", "avx2"), ("DNNL_MAX_CPU_ISA", "AVX2")],
        Isa::Avx512 => [("ATEN_CPU_CAPABILITY", "avx512"), ("DNNL_MAX_CPU_ISA", "AVX512_CORE")],
    }
}

/// `torch_layers.py`: PyTorch's per-layer timings, run with `python -c`.
const LAYERS_SCRIPT: &str = include_str!("torch_layers.py");

/// PyTorch's time for one pass of one layer (a line of `torch_layers.py`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TorchLayerTiming {
    pub layer: String,
    /// `forward` or `backward`.
    pub pass: String,
    pub ms: f64,
}

/// The fields of a reference result line that the report uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TorchThroughput {
    pub case: String,
    pub batch: usize,
    pub gen_iters_per_s: f64,
    pub peak_rss_mb: f64,
    /// On CUDA: `torch.cuda.max_memory_allocated`, added by the peak-memory script.
    #[serde(default)]
    pub peak_gpu_mb: Option<f64>,
    pub other_cpu_frac: f64,
    pub threads: usize,
    pub torch: String,
}

/// Runs `throughput.py` (argv[1], then its arguments) in this interpreter and prints its
/// result line with `peak_gpu_mb` added: the most memory PyTorch's tensors held at once.
const PEAK_GPU_SCRIPT: &str = r#"
import contextlib, io, json, runpy, sys
import torch
sys.argv = sys.argv[1:]
# On GPU N, make it PyTorch's current device: synchronize() and max_memory_allocated()
# read the current one.
device = torch.device(sys.argv[sys.argv.index("--device") + 1])
if device.index is not None:
    torch.cuda.set_device(device)
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as e:
        if e.code not in (None, 0):
            raise
line = json.loads([l for l in out.getvalue().splitlines() if l.startswith("{")][-1])
line["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
print(json.dumps(line))
"#;

impl TorchRef {
    fn script(&self) -> PathBuf {
        self.dir.join("throughput.py")
    }

    /// `python` with the reference's environment: threads, and the instruction-set hold.
    fn python(&self) -> Command {
        let threads = self.threads.to_string();
        let mut cmd = Command::new(&self.python);
        cmd.env("OMP_NUM_THREADS", &threads).env("MKL_NUM_THREADS", &threads);
        if let Some(isa) = self.held_to {
            cmd.envs(isa_env(isa));
        }
        cmd
    }

    /// Checks the script and the interpreter exist before anything is timed, and
    /// returns the CPU capability PyTorch dispatches to under this environment
    /// (`AVX512`, `AVX2`, …; `?` for a PyTorch too old to say).
    pub fn check(&self) -> Result<String> {
        let script = self.script();
        if !script.is_file() {
            return Err(BenchError::Worker(format!("{}: PyTorch reference script not found", script.display())));
        }
        let probe = "import torch; print(getattr(torch.backends.cpu, 'get_cpu_capability', lambda: '?')())";
        let out = self.python().args(["-c", probe]).output();
        match out {
            Ok(o) if o.status.success() => {
                Ok(String::from_utf8_lossy(&o.stdout).lines().last().unwrap_or("?").trim().to_string())
            }
            Ok(o) => Err(BenchError::Worker(format!(
                "{}: cannot import torch ({}); see ../shared/bench/torchref/README.md",
                self.python.display(),
                String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
            ))),
            Err(e) => Err(BenchError::Io { what: format!("running {}", self.python.display()), source: e }),
        }
    }

    /// PyTorch's forward and backward times of `layers`, each about `budget_s` seconds
    /// per pass, in a fresh process with the reference's environment.
    pub fn time_layers(&self, layers: &[LayerShape], budget_s: f64, target: Target) -> Result<Vec<TorchLayerTiming>> {
        self.time_specs(layers.iter().map(crate::ops::torch_spec).collect(), budget_s, target)
    }

    /// PyTorch's forward and backward times of the layers `torch_layers.py` reads from
    /// `specs` (convolutions as [`crate::ops::torch_spec`] writes them, batch norms as
    /// [`crate::norms::NormShape::torch_spec`]), two per layer.
    pub fn time_specs(
        &self,
        specs: Vec<serde_json::Value>,
        budget_s: f64,
        target: Target,
    ) -> Result<Vec<TorchLayerTiming>> {
        let layers = specs.len();
        let device = target.device_name();
        let spec =
            serde_json::json!({ "threads": self.threads, "budget_s": budget_s, "device": device, "layers": specs });
        let out = self
            .python()
            .args(["-c", LAYERS_SCRIPT, &spec.to_string()])
            .output()
            .map_err(|e| BenchError::Io { what: format!("running {}", self.python.display()), source: e })?;
        let what = Path::new("torch_layers.py (PyTorch's per-layer timings)");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines = text.lines().filter(|l| l.trim_start().starts_with('{'));
        let timings: Vec<TorchLayerTiming> = lines
            .map(serde_json::from_str)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| BenchError::Worker(format!("{}: unreadable result line ({e})", what.display())))?;
        if !out.status.success() || timings.len() != 2 * layers {
            return Err(failure(what, &out.stderr));
        }
        Ok(timings)
    }

    /// Runs the reference case of `model` in a fresh process, on `target`'s device and batch.
    pub fn measure(&self, model: BenchModel, plan: TimingPlan, seed: u64, target: Target) -> Result<TorchThroughput> {
        let threads = self.threads.to_string();
        let batch = target.batch.unwrap_or(0).to_string();
        let mut python = self.python();
        if target.cuda() {
            python.args(["-c", PEAK_GPU_SCRIPT]);
        }
        let out = python
            .arg(self.script())
            .args(["--worker", model.torch_case(), "--threads", &threads, "--seed", &seed.to_string()])
            .args(["--device", &target.device_name(), "--batch", &batch])
            .args(["--repeats", &plan.repeats.to_string(), "--target-s", &plan.target_s.to_string()])
            .args(["--warmup-s", &plan.warmup_s.to_string()])
            .current_dir(&self.dir)
            .output()
            .map_err(|e| BenchError::Io { what: format!("running {}", self.python.display()), source: e })?;
        parse_last_line(&out.stdout, &out.stderr, out.status.success(), &self.script())
    }
}

/// The last stdout line of a worker, as JSON.
pub fn parse_last_line<T: serde::de::DeserializeOwned>(
    stdout: &[u8],
    stderr: &[u8],
    success: bool,
    what: &Path,
) -> Result<T> {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().rev().find(|l| l.trim_start().starts_with('{'));
    match (success, last) {
        (true, Some(line)) => serde_json::from_str(line)
            .map_err(|e| BenchError::Worker(format!("{}: unreadable result line ({e}): {line}", what.display()))),
        _ => Err(failure(what, stderr)),
    }
}

/// A worker that failed, with the last lines of what it wrote to stderr; a Rust panic's
/// message instead, without the backtrace after it (`RUST_BACKTRACE` set), whose last
/// lines name only the thread pool.
fn failure(what: &Path, stderr: &[u8]) -> BenchError {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().collect();
    let shown = match lines.iter().position(|l| l.contains("panicked at")) {
        Some(at) => {
            let end =
                lines[at..].iter().position(|l| l.starts_with("stack backtrace:")).map_or(lines.len(), |n| at + n);
            &lines[at..end.min(at + 15)]
        }
        None => &lines[lines.len().saturating_sub(15)..],
    };
    BenchError::Worker(format!("{} failed:\n{}", what.display(), shown.join("\n")))
}

#[cfg(test)]
mod tests {
    use ganzoo_train::device::DeviceSpec;

    use super::*;

    #[test]
    fn a_failed_worker_is_told_by_its_panic_or_its_last_lines() {
        let said = |stderr: &str| failure(Path::new("w"), stderr.as_bytes()).to_string();
        let panic = "log line\n\nthread '<unnamed>' (5) panicked at src/a.rs:1:2:\ncapacity overflow\n\
                     stack backtrace:\n   0: rust_begin_unwind\n   1: rayon_core::registry::main_loop\n";
        let told = said(panic);
        assert!(
            told.ends_with("w failed:\nthread '<unnamed>' (5) panicked at src/a.rs:1:2:\ncapacity overflow"),
            "{told}"
        );
        let traceback: String = (0..20).map(|i| format!("line {i}\n")).collect();
        let told = said(&traceback);
        assert!(told.contains("line 5\n") && told.ends_with("line 19") && !told.contains("line 4\n"), "{told}");
    }

    /// A stand-in for Python that prints the capability PyTorch would pick from its
    /// environment (ATen's level, oneDNN's ceiling), so the hold can be seen arriving.
    fn fake_python(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("python");
        std::fs::write(&path, "#!/bin/sh\necho \"${ATEN_CPU_CAPABILITY:-own}/${DNNL_MAX_CPU_ISA:-own}\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("throughput.py"), "").unwrap();
        path
    }

    #[test]
    fn the_reference_runs_held_to_the_level_asked_for_or_free() {
        let dir = tempfile::tempdir().unwrap();
        let python = fake_python(dir.path());
        let at = |held_to| TorchRef { python: python.clone(), dir: dir.path().into(), threads: 2, held_to }.check();
        assert_eq!(at(None).unwrap(), "own/own");
        assert_eq!(at(Some(Isa::Avx2)).unwrap(), "avx2/AVX2");
        assert_eq!(at(Some(Isa::Scalar)).unwrap(), "default/SSE41");
    }

    /// The layers reach the script as PyTorch modules computing the same convolutions
    /// (a transposed layer from the forward's output side back to its input side), and
    /// its lines come back one per layer and pass; a script that fails is reported
    /// with its last words.
    #[test]
    fn per_layer_timings_go_out_as_specs_and_come_back_per_pass() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let python = dir.path().join("python");
        let spec = dir.path().join("spec.json");
        let script = format!(
            "#!/bin/sh\nprintf '%s' \"$3\" > {}\nfor pass in forward backward; do echo \"{{\\\"layer\\\": \\\"x\\\", \\\"pass\\\": \\\"$pass\\\", \\\"ms\\\": 2.5}}\"; done\n",
            spec.display()
        );
        std::fs::write(&python, script).unwrap();
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = TorchRef { python: python.clone(), dir: dir.path().into(), threads: 3, held_to: None };
        let layers = crate::ops::dcgan_layers(8).unwrap();
        let generator = layers.iter().find(|l| l.name.starts_with("dcgan32.G4")).unwrap();
        let cpu = Target::default();
        let got = t.time_layers(std::slice::from_ref(generator), 0.5, cpu).unwrap();
        assert_eq!(
            got.iter().map(|t| (t.pass.as_str(), t.ms)).collect::<Vec<_>>(),
            [("forward", 2.5), ("backward", 2.5)]
        );
        let sent: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&spec).unwrap()).unwrap();
        assert_eq!((sent["threads"].as_u64(), sent["budget_s"].as_f64()), (Some(3), Some(0.5)));
        assert_eq!(sent["device"].as_str(), Some("cpu"));
        // dcgan32's last generator layer: 64 channels at 16×16 up to 3 at 32×32.
        let layer = &sent["layers"][0];
        let fields = ["kind", "batch", "cin", "cout", "h", "w", "kh", "stride", "padding", "output_padding"];
        let values: Vec<String> = fields.iter().map(|f| layer[f].to_string()).collect();
        assert_eq!(values, ["\"transpose\"", "8", "64", "3", "16", "16", "4", "2", "1", "[0,0]"]);
        // Two layers sent, two lines back: the count is checked.
        let two = &layers[..2];
        assert!(t.time_layers(two, 0.5, cpu).unwrap_err().to_string().contains("torch_layers.py"));
        std::fs::write(&python, "#!/bin/sh\necho 'ModuleNotFoundError: torch' >&2\nexit 1\n").unwrap();
        let err = t.time_layers(two, 0.5, cpu).unwrap_err().to_string();
        assert!(err.contains("failed") && err.contains("ModuleNotFoundError"), "{err}");
    }

    #[test]
    fn on_cuda_the_reference_runs_inside_the_peak_memory_wrapper() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let python = dir.path().join("python");
        // A stand-in that adds the wrapper's field only when run with `-c SCRIPT`.
        let script = r##"#!/bin/sh
gpu=''
if [ "$1" = -c ]; then gpu=', "peak_gpu_mb": 12.5'; fi
printf '{"case": "dcgan32", "batch": 64, "gen_iters_per_s": 2.0, "peak_rss_mb": 1.0, "other_cpu_frac": 0.0, "threads": 1, "torch": "x"%s}\n' "$gpu"
"##;
        std::fs::write(&python, script).unwrap();
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = TorchRef { python, dir: dir.path().into(), threads: 1, held_to: None };
        let plan = TimingPlan { repeats: 1, target_s: 0.1, warmup_s: 0.0 };
        let run = |device| t.measure(BenchModel::Dcgan32, plan, 0, Target { device, ..Target::default() }).unwrap();
        let gpu = DeviceSpec::Cuda(1);
        assert_eq!((run(DeviceSpec::Cpu).peak_gpu_mb, run(gpu).peak_gpu_mb), (None, Some(12.5)));
        assert_eq!(run(gpu).gen_iters_per_s, 2.0);
    }

    #[test]
    fn a_missing_script_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let t = TorchRef { python: "python3".into(), dir: dir.path().into(), threads: 1, held_to: None };
        let err = t.check().unwrap_err().to_string();
        assert!(err.contains("throughput.py") && err.contains("not found"), "{err}");
    }
}

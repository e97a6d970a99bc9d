//! `OUT/figures.json`: the settings each figure in a folder was made with, so that
//! `--resume` keeps a figure only if it was made as asked now (a figure of another seed
//! or budget is refused, never passed off as this one).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files::save_text;
use crate::{Figure, FigureError, Options, Result};

/// The manifest's file name in the figures' folder.
pub const FILE: &str = "figures.json";
/// Its format version; a file without this key is not ganzoo's.
const VERSION: u32 = 1;
/// Larger than any manifest ganzoo writes (seven small entries).
const MAX_BYTES: u64 = 64 * 1024;

/// What a figure depends on beyond the code: the seed, and mode-coverage's budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetRecord>,
}

/// mode-coverage's budget as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetRecord {
    pub iters: u64,
    pub eval_every: u64,
    pub seeds: u64,
}

impl Settings {
    /// The settings `figure` is made with under `options`.
    pub fn of(figure: Figure, options: &Options) -> Self {
        let b = options.budget;
        let budget = (figure == Figure::ModeCoverage).then_some(BudgetRecord {
            iters: b.iters,
            eval_every: b.eval_every,
            seeds: b.seeds,
        });
        Self { seed: options.seed, budget }
    }

    /// As the flags that give them.
    fn flags(&self) -> String {
        let mut s = format!("--seed {}", self.seed);
        if let Some(b) = self.budget {
            s += &format!(" --iters {} --eval-every {} --seeds {}", b.iters, b.eval_every, b.seeds);
        }
        s
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    ganzoo_figures: u32,
    figures: BTreeMap<String, Settings>,
}

fn path(out: &Path) -> PathBuf {
    out.join(FILE)
}

/// The folder's manifest (empty if there is none); a file of that name that is not one
/// is refused, never replaced.
fn read(out: &Path) -> Result<Manifest> {
    let file = path(out);
    let refuse = |detail: String| FigureError::Refused { path: file.clone(), detail };
    let text = match ganzoo_data::regular_file::read_to_string(&file, MAX_BYTES, "figure manifest") {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::default()),
        Err(e) => return Err(refuse(e.to_string())),
    };
    match serde_json::from_str::<Manifest>(&text) {
        Ok(m) if m.ganzoo_figures == VERSION => Ok(m),
        _ => Err(refuse(format!(
            "is not ganzoo's record of the figures made here (version {VERSION}): nothing is replaced; move it, or choose another --out"
        ))),
    }
}

/// Refuses a manifest in `options.out` that is not ganzoo's, before any figure is made.
pub fn check(options: &Options) -> Result<()> {
    read(&options.out).map(|_| ())
}

/// Under `--resume`, whether the figure whose files both exist was made with the
/// settings asked now: refused if it was made otherwise, or with no record of how.
pub fn check_kept(figure: Figure, options: &Options) -> Result<()> {
    let asked = Settings::of(figure, options);
    let png = options.out.join(format!("{}.png", figure.name()));
    let refuse = |detail: String| Err(FigureError::Refused { path: png.clone(), detail });
    match read(&options.out)?.figures.get(figure.name()) {
        Some(made) if *made == asked => Ok(()),
        Some(made) => refuse(format!(
            "was made with {} ({} asked now): pass the same settings to keep it, or --overwrite to make it again",
            made.flags(),
            asked.flags()
        )),
        None => refuse(format!(
            "has no record in {FILE} of the settings it was made with: pass --overwrite to make it again"
        )),
    }
}

/// Records that `figure` was just made with `options`' settings.
pub fn record(figure: Figure, options: &Options) -> Result<()> {
    let mut m = read(&options.out)?;
    m.ganzoo_figures = VERSION;
    m.figures.insert(figure.name().to_string(), Settings::of(figure, options));
    let text = serde_json::to_string_pretty(&m).map_err(|e| FigureError::Compute(e.to_string()))? + "\n";
    save_text(&path(&options.out), &text)
}

//! Download progress shown as an indicatif bar on stderr.

use ganzoo_data::DownloadProgress;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Default)]
pub struct DownloadBar {
    bar: Option<ProgressBar>,
}

impl DownloadProgress for DownloadBar {
    fn begin(&mut self, file: &str, total_bytes: Option<u64>) {
        let bar = match total_bytes {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let style = ProgressStyle::with_template("{msg:28} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(file.to_string());
        self.bar = Some(bar);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn end(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

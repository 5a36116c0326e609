//! How the demo speaks: a spinner per step on a terminal (indicatif), one line per
//! finished step otherwise, nothing with `--json` (the report is printed instead).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Prints steps as they run.
#[derive(Debug)]
pub struct Narrator {
    quiet: bool,
    current: Option<ProgressBar>,
}

impl Narrator {
    /// Spinners on stderr, or silence when `quiet`.
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            current: None,
        }
    }

    /// A step starts.
    pub fn start(&mut self, n: usize, title: &str) {
        if self.quiet || !std::io::stderr().is_terminal() {
            return;
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(80));
        bar.set_message(format!("[{n:>2}] {title}"));
        self.current = Some(bar);
    }

    /// The step ended: a mark (`✔`, `✘`) and what happened, with detail lines.
    pub fn finish(&mut self, n: usize, title: &str, ok: bool, details: &[String]) {
        if self.quiet {
            return;
        }
        let mark = if ok { "✔" } else { "✘" };
        let mut text = format!("{mark} [{n:>2}] {title}");
        for line in details {
            text.push_str("\n        ");
            text.push_str(line);
        }
        match self.current.take() {
            Some(bar) => bar.finish_with_message(text),
            None => eprintln!("{text}"),
        }
    }

    /// A line outside any step.
    pub fn say(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }
}

//! Reports: one self-contained HTML page per run, a timeline to look at.
//!
//! [`render`] draws an [`Outcome`] with its [`Verdicts`]; [`render_history`]
//! draws a history recorded elsewhere with its linearizability verdict.
//! The page needs nothing but a browser: its style and script are inline,
//! it fetches nothing, and the run is embedded as JSON in a
//! `<script type="application/json">` tag that `timeline.js` draws as one
//! SVG: a lane per client (the final reads in their own), a bar per
//! operation, fault windows as shaded bands, each replica's roles, the
//! operations the checkers' evidence names marked (class `violation`,
//! `data-op-index`), and the per-phase latency table. Once drawn the body
//! carries `data-rendered="ok"` (or `"error"` and `data-error`), which the
//! browser test reads.
//!
//! Files: this one (the entry points and the page), `data` (what the page
//! is given: the JSON, built from an outcome or a history), `timeline.js`
//! and `report.css` (the drawing, embedded at compile time).
//!
//! Layering: `report` sits above `sim` and `check` and is pure (it runs
//! nothing). [`crate::sim::repro::save_failure`] takes [`render_outcome`]
//! as its renderer, so `sim` never imports `report`.

mod data;

use crate::{
    check::{Verdict, explain::NonLinearizable},
    history::History,
    sim::{Outcome, Verdicts},
};

const SCRIPT: &str = include_str!("timeline.js");
const STYLE: &str = include_str!("report.css");

/// The report of `outcome`, judged by `verdicts`.
pub fn render(outcome: &Outcome, verdicts: &Verdicts) -> String {
    page(&data::Report::of_outcome(outcome, verdicts))
}

/// The report of `outcome`, with the verdicts last computed on it (or the
/// default ones): the renderer [`crate::sim::repro::save_failure`] takes.
pub fn render_outcome(outcome: &Outcome) -> String {
    let verdicts = outcome
        .checked_verdicts()
        .unwrap_or_else(|| outcome.verdicts());
    render(outcome, &verdicts)
}

/// The report of a recorded `history` (named `title`, e.g. its file) and
/// its linearizability `verdict`; its times are nanoseconds if
/// `nanoseconds` (replisim's own JSON), else shown in their own unit.
pub fn render_history(
    title: &str,
    history: &History,
    nanoseconds: bool,
    verdict: &Verdict<NonLinearizable>,
) -> String {
    page(&data::Report::of_history(
        title,
        history,
        nanoseconds,
        verdict,
    ))
}

/// The page: the data as JSON (with `<` escaped so no string can close the
/// tag), the style and the script.
fn page(report: &data::Report) -> String {
    let json = serde_json::to_string(report)
        .expect("reports serialise")
        .replace('<', "\\u003c");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>replisim report</title>\n<style>\n{STYLE}</style>\n</head>\n\
         <body data-rendered=\"pending\">\n<header id=\"header\"></header>\n\
         <div id=\"controls\"><button id=\"zoom-in\" title=\"zoom in (wheel)\">+</button>\
         <button id=\"zoom-out\" title=\"zoom out (wheel)\">\u{2212}</button>\
         <button id=\"zoom-fit\">fit</button><span id=\"legend\"></span></div>\n\
         <div id=\"timeline\"></div>\n<section id=\"phases\"></section>\n\
         <script type=\"application/json\" id=\"data\">{json}</script>\n\
         <script>\n{SCRIPT}</script>\n</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Completion, Op};

    #[test]
    fn a_history_page_is_self_contained_and_marks_the_evidence() {
        let mut history = History::default();
        let write = Op::Write {
            key: "k".into(),
            value: "</script>".into(),
        };
        let read = Op::Read {
            key: "k".into(),
            value: None,
        };
        history.invoke(0, 0, write.clone());
        history.complete(0, 10, write, &Completion::Ok(None));
        history.invoke(1, 20, read.clone());
        history.complete(1, 30, read, &Completion::Ok(Some("x".into())));
        let ops = history.operations();
        let verdict = crate::check::linearizable::check_operations(
            &ops,
            &Default::default(),
            &Default::default(),
        );
        assert!(verdict.is_violation());
        let html = render_history("h.json", &history, true, &verdict);
        assert_eq!(html.matches("</script>").count(), 2, "{html}");
        // Nothing to fetch: the only address is the SVG namespace's name.
        let addresses = html.replace("\"http://www.w3.org/2000/svg\"", "");
        assert!(!addresses.contains("http") && !addresses.contains(" src="));
        let json = html
            .split("id=\"data\">")
            .nth(1)
            .and_then(|rest| rest.split("</script>").next())
            .unwrap();
        let data: serde_json::Value = serde_json::from_str(json).unwrap();
        let marked: Vec<&serde_json::Value> = data["ops"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|op| op["violation"] == true)
            .collect();
        assert_eq!(marked.len(), 1);
        assert_eq!(marked[0]["label"], "read k \u{2192} x");
    }
}

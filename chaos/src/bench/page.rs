//! The bench's HTML page: per fault, a histogram and a CDF of the time to a new leader, one series per target
//! and timeout range (like Figure 16 of the Raft paper), drawn with plotters' SVG backend and inlined.

use super::stats;
use plotters::prelude::*;

/// One series: a label and its samples in ms.
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Samples in milliseconds.
    pub samples_ms: Vec<f64>,
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

fn x_max(series: &[Series]) -> f64 {
    let max = series
        .iter()
        .flat_map(|s| s.samples_ms.iter().copied())
        .fold(1.0, f64::max);
    (max * 1.05).ceil()
}

/// A CDF plot of `series` as an SVG string.
pub fn cdf_svg(title: &str, series: &[Series]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..x_max(series), 0.0..1.0)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("ms from the fault to a new leader")
            .y_desc("fraction of trials")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in series.iter().enumerate() {
            let mut sorted = s.samples_ms.clone();
            sorted.sort_by(f64::total_cmp);
            let n = sorted.len().max(1) as f64;
            let points: Vec<(f64, f64)> = sorted
                .iter()
                .enumerate()
                .flat_map(|(k, &x)| [(x, k as f64 / n), (x, (k + 1) as f64 / n)])
                .collect();
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(&s.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A histogram (10 ms bins, drawn as outlines so series can overlap) as an SVG string.
pub fn histogram_svg(title: &str, series: &[Series]) -> Result<String, String> {
    let hi = x_max(series);
    let bins = (hi / 10.0).ceil().max(1.0) as usize;
    let counts: Vec<Vec<usize>> = series
        .iter()
        .map(|s| stats::histogram(&s.samples_ms, 0.0, bins as f64 * 10.0, bins))
        .collect();
    let y_max = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..bins as f64 * 10.0, 0.0..y_max * 1.1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("ms (10 ms bins)")
            .y_desc("trials")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, c) in counts.iter().enumerate() {
            let points: Vec<(f64, f64)> = c
                .iter()
                .enumerate()
                .flat_map(|(b, &n)| {
                    [
                        (b as f64 * 10.0, n as f64),
                        ((b + 1) as f64 * 10.0, n as f64),
                    ]
                })
                .collect();
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(&series[i].label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The whole page: the text table, then a histogram and a CDF per fault.
pub fn html(table: &str, per_fault: &[(String, Vec<Series>)]) -> Result<String, String> {
    let mut out = String::from(
        "<!doctype html><meta charset=\"utf-8\"><title>chaos bench election</title>\
         <style>body{font-family:sans-serif;margin:24px}pre{background:#f6f6f6;padding:12px}</style>\
         <h1>Election latency</h1>",
    );
    out.push_str(&format!("<pre>{}</pre>", escape(table)));
    for (fault, series) in per_fault {
        if series.iter().all(|s| s.samples_ms.is_empty()) {
            continue;
        }
        out.push_str(&format!("<h2>{}</h2>", escape(fault)));
        out.push_str(&histogram_svg(&format!("{fault}: histogram"), series)?);
        out.push_str(&cdf_svg(&format!("{fault}: CDF"), series)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_both_plots_and_the_table() {
        let series = vec![Series {
            label: "raft-node 300-600ms".into(),
            samples_ms: vec![280.0, 290.0, 310.0],
        }];
        let page = html("a <table>", &[("kill".into(), series)]).unwrap();
        assert!(page.contains("a &lt;table&gt;"));
        assert_eq!(page.matches("<svg").count(), 2);
        assert!(page.contains("raft-node 300-600ms"));
    }
}

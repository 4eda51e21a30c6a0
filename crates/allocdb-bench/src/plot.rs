//! Plots of a comparison run, as SVG and PNG: throughput per workload and target (bars of the
//! medians with min–max whiskers, log scale), and one latency CDF per workload (one line per
//! target, from the median-throughput repetition).
//!
//! Invariants: the figures come from the same grouping as `summary.md` ([`summary`]), so a
//! bar is exactly a table row's median; every series keeps one colour across all charts. SVGs
//! are always written: their text is left to the viewer's fonts, and when no font file is
//! loaded here the layout uses an estimate of text width. PNGs need glyphs drawn here, from a
//! TTF read at run time; without one they are skipped with a reason, never failing the run.

#![expect(
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    reason = "axis and pixel positions: small, non-negative counts and sizes"
)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{BackendColor, BackendCoord, DrawingErrorKind};

use crate::report::RunResult;
use crate::summary::{self, GroupKey};

/// Font files tried for PNG text, in order, after `$ALLOCDB_PLOT_FONT` (Debian and Ubuntu's
/// `fonts-dejavu-core`, then the same font on Arch and Fedora, then Liberation).
const FONT_CANDIDATES: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];
/// The family name charts ask for; the loaded TTF is registered under it.
const FONT_FAMILY: &str = "sans-serif";
/// Chart size in pixels (SVG user units).
const CHART_SIZE: (u32, u32) = (1_100, 650);
/// Series colours (the "tab10" palette), by series index.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// What [`write_plots`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlotReport {
    /// Every file written.
    pub files: Vec<PathBuf>,
    /// Why the PNGs were not written, when they were not.
    pub png_skipped: Option<String>,
}

/// One bar: a configuration's headline median and range.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// Index into [`Throughput::workloads`].
    pub workload_index: usize,
    /// Index into [`Throughput::series`].
    pub series_index: usize,
    /// The median.
    pub median: f64,
    /// The smallest repetition.
    pub min: f64,
    /// The largest repetition.
    pub max: f64,
}

/// The throughput chart's data.
#[derive(Clone, Debug, PartialEq)]
pub struct Throughput {
    /// Categories on the x axis, in summary order.
    pub workloads: Vec<String>,
    /// Series (target, variant, durability), in summary order.
    pub series: Vec<String>,
    /// One bar per configuration (the first one when two share a workload and series).
    pub bars: Vec<Bar>,
}

/// One workload's latency CDF: (series index, points of (µs, percentile)).
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyCdf {
    /// The workload.
    pub workload: String,
    /// One line per configuration with a distribution.
    pub lines: Vec<(usize, Vec<(f64, f64)>)>,
}

fn index_of(names: &mut Vec<String>, name: &str) -> usize {
    names.iter().position(|known| known == name).unwrap_or_else(|| {
        names.push(name.to_owned());
        names.len() - 1
    })
}

/// The throughput bars and latency lines of a set of results.
pub fn chart_data(results: &[RunResult]) -> (Throughput, Vec<LatencyCdf>) {
    let groups = summary::group_results(results);
    let mut throughput = Throughput { workloads: Vec::new(), series: Vec::new(), bars: Vec::new() };
    let mut cdfs: Vec<LatencyCdf> = Vec::new();
    for group in &groups {
        let workload_index = index_of(&mut throughput.workloads, &group.key.workload);
        let series_index = index_of(&mut throughput.series, &series_name(&group.key));
        let headline = summary::summarize_group(group).headline;
        let taken = throughput
            .bars
            .iter()
            .any(|bar| bar.workload_index == workload_index && bar.series_index == series_index);
        if !taken {
            throughput.bars.push(Bar {
                workload_index,
                series_index,
                median: headline.median,
                min: headline.min,
                max: headline.max,
            });
        }
        let Some(run) = summary::median_run(&group.runs) else { continue };
        let points: Vec<(f64, f64)> = run
            .latency_cdf
            .iter()
            .map(|&(percentile, latency_us)| (latency_us.max(1) as f64, percentile))
            .collect();
        if points.is_empty() {
            continue;
        }
        if !cdfs.iter().any(|cdf| cdf.workload == group.key.workload) {
            cdfs.push(LatencyCdf { workload: group.key.workload.clone(), lines: Vec::new() });
        }
        if let Some(cdf) = cdfs.iter_mut().find(|cdf| cdf.workload == group.key.workload)
            && !cdf.lines.iter().any(|(known, _)| *known == series_index)
        {
            cdf.lines.push((series_index, points));
        }
    }
    (throughput, cdfs)
}

/// A series' legend name.
fn series_name(key: &GroupKey) -> String {
    key.series_name()
}

fn colour(series_index: usize) -> RGBColor {
    PALETTE[series_index % PALETTE.len()]
}

/// Loads a TTF once per process for PNG text; the error says why there is none.
fn load_font() -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let mut candidates: Vec<PathBuf> = std::env::var_os("ALLOCDB_PLOT_FONT").map(PathBuf::from).into_iter().collect();
            candidates.extend(FONT_CANDIDATES.iter().map(PathBuf::from));
            let (path, bytes) = candidates
                .iter()
                .find_map(|path| std::fs::read(path).ok().map(|bytes| (path, bytes)))
                .ok_or_else(|| {
                    format!(
                        "no font file found (tried $ALLOCDB_PLOT_FONT and {}); install one, e.g. `apt-get install -y fonts-dejavu-core`",
                        FONT_CANDIDATES.join(", ")
                    )
                })?;
            // The font table keeps `&'static` glyph data; one font per process, loaded once.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, bytes)
                .map_err(|_| format!("{} is not a usable TrueType font", path.display()))
        })
        .clone()
}

/// Writes `throughput.{svg,png}` and `latency-cdf-<workload>.{svg,png}` into `dir`.
///
/// # Errors
///
/// A chart that cannot be drawn or written (a missing font only skips the PNGs).
pub fn write_plots(results: &[RunResult], dir: &Path) -> Result<PlotReport> {
    let png_skipped = load_font().err();
    write_plots_with(results, dir, FONT_FAMILY, png_skipped)
}

/// [`write_plots`] with the text family and PNG decision given (tests use a family no font
/// is registered under, to prove SVGs need none).
fn write_plots_with(
    results: &[RunResult],
    dir: &Path,
    family: &str,
    png_skipped: Option<String>,
) -> Result<PlotReport> {
    let (throughput, cdfs) = chart_data(results);
    let mut report = PlotReport { files: Vec::new(), png_skipped };
    let with_png = report.png_skipped.is_none();
    if !throughput.bars.is_empty() {
        let svg = dir.join("throughput.svg");
        draw_throughput(&svg_area(&svg), &throughput, family)
            .map_err(|error| anyhow!("{}: {error}", svg.display()))?;
        report.files.push(svg);
        if with_png {
            let png = dir.join("throughput.png");
            draw_throughput(&BitMapBackend::new(&png, CHART_SIZE).into_drawing_area(), &throughput, family)
                .map_err(|error| anyhow!("{}: {error}", png.display()))?;
            report.files.push(png);
        }
    }
    for cdf in &cdfs {
        let stem = format!("latency-cdf-{}", file_safe(&cdf.workload));
        let svg = dir.join(format!("{stem}.svg"));
        draw_latency_cdf(&svg_area(&svg), cdf, &throughput.series, family)
            .map_err(|error| anyhow!("{}: {error}", svg.display()))?;
        report.files.push(svg);
        if with_png {
            let png = dir.join(format!("{stem}.png"));
            draw_latency_cdf(
                &BitMapBackend::new(&png, CHART_SIZE).into_drawing_area(),
                cdf,
                &throughput.series,
                family,
            )
            .map_err(|error| anyhow!("{}: {error}", png.display()))?;
            report.files.push(png);
        }
    }
    Ok(report)
}

fn file_safe(name: &str) -> String {
    name.chars().map(|character| if character.is_ascii_alphanumeric() { character } else { '-' }).collect()
}

fn svg_area(path: &Path) -> DrawingArea<SvgText<'_>, Shift> {
    SvgText { inner: SVGBackend::new(path, CHART_SIZE) }.into_drawing_area()
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Grouped bars: one group per workload, one bar per series, whiskers from min to max.
fn draw_throughput<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &Throughput,
    family: &str,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let positive = |value: f64| value.is_finite() && value > 0.0;
    let values =
        data.bars.iter().flat_map(|bar| [bar.min, bar.median, bar.max]).filter(|value| positive(*value));
    let low = values.clone().fold(f64::INFINITY, f64::min);
    let high = values.fold(0.0_f64, f64::max);
    let (floor, top) = if low.is_finite() { (low / 2.0, high * 2.0) } else { (0.1, 10.0) };
    let workload_count = data.workloads.len().max(1);
    let entries: Vec<(&str, RGBColor)> =
        data.series.iter().enumerate().map(|(index, name)| (name.as_str(), colour(index))).collect();
    let body = root.titled("Throughput: medians, whiskers min–max (hotspot: hand-overs/s)", (family, 22))?;
    let (plot_area, legend_area) = split_for_legend(&body, &entries);
    draw_legend(&legend_area, &entries, family)?;
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(WorkloadAxis { count: workload_count }, (floor..top).log_scale())?;
    let workloads = &data.workloads;
    let label = |x: &f64| workloads.get(x.floor() as usize).cloned().unwrap_or_default();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&label)
        .y_label_formatter(&|y: &f64| log_tick_label(*y))
        .y_desc("per second (log scale)")
        .label_style((family, 14))
        .axis_desc_style((family, 15))
        .draw()?;
    let series_count = data.series.len().max(1) as f64;
    let slot_width = 0.8 / series_count;
    for series_index in 0..data.series.len() {
        let fill = colour(series_index);
        let bars: Vec<&Bar> = data.bars.iter().filter(|bar| bar.series_index == series_index).collect();
        let left = |bar: &Bar| bar.workload_index as f64 + 0.1 + slot_width * bar.series_index as f64;
        chart.draw_series(bars.iter().map(|bar| {
            let x = left(bar);
            Rectangle::new([(x, floor), (x + slot_width * 0.9, bar.median.max(floor))], fill.filled())
        }))?;
        chart.draw_series(bars.iter().map(|bar| {
            let center = left(bar) + slot_width * 0.45;
            let (low, high) = (bar.min.max(floor), bar.max.max(floor));
            let cap = slot_width * 0.2;
            PathElement::new(
                vec![
                    (center - cap, low),
                    (center + cap, low),
                    (center, low),
                    (center, high),
                    (center - cap, high),
                    (center + cap, high),
                ],
                BLACK.stroke_width(1),
            )
        }))?;
    }
    root.present()
}

/// One line per series: latency (µs, log scale) against percentile.
fn draw_latency_cdf<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    cdf: &LatencyCdf,
    series: &[String],
    family: &str,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let latencies = cdf.lines.iter().flat_map(|(_, points)| points.iter().map(|point| point.0));
    let low = latencies.clone().fold(f64::INFINITY, f64::min).max(1.0);
    let high = latencies.fold(1.0_f64, f64::max);
    let (low, high) = if low.is_finite() && high > low { (low / 1.5, high * 1.5) } else { (1.0, 10.0) };
    let entries: Vec<(&str, RGBColor)> = cdf
        .lines
        .iter()
        .map(|(index, _)| (series.get(*index).map_or("", String::as_str), colour(*index)))
        .collect();
    let title = format!("Request latency CDF: {} (median-throughput run)", cdf.workload);
    let body = root.titled(&title, (family, 22))?;
    let (plot_area, legend_area) = split_for_legend(&body, &entries);
    draw_legend(&legend_area, &entries, family)?;
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((low..high).log_scale(), 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("latency µs (log scale)")
        .y_desc("percentile")
        .x_label_formatter(&|x: &f64| log_tick_label(*x))
        .y_label_formatter(&|y: &f64| format!("{y:.0}"))
        .label_style((family, 14))
        .axis_desc_style((family, 15))
        .draw()?;
    for (series_index, points) in &cdf.lines {
        let stroke = colour(*series_index);
        chart.draw_series(LineSeries::new(points.iter().copied(), stroke.stroke_width(2)))?;
    }
    root.present()
}

/// A log axis' tick label: only 1, 2 and 5 times a power of ten are named, so the labels of
/// the dense upper ticks of a decade do not overlap.
fn log_tick_label(value: f64) -> String {
    if !(value.is_finite() && value > 0.0) {
        return String::new();
    }
    let mantissa = value / 10_f64.powf(value.log10().floor());
    let named = [1.0, 2.0, 5.0, 10.0].iter().any(|step| (mantissa - step).abs() < 1e-6 * step);
    if named { summary::format_number(value) } else { String::new() }
}

/// Legend text size in pixels.
const LEGEND_FONT_SIZE: f64 = 14.0;

/// Splits an area into the plot and a legend column on the right, wide enough for the
/// longest name (plotters' own legend lays its text out with font metrics even for SVG, so
/// it is drawn here with plain text elements and an estimated width instead).
fn split_for_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(&str, RGBColor)],
) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
    let longest = entries.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0);
    let legend_width = (longest as f64 * LEGEND_FONT_SIZE * 0.6) as u32 + 50;
    let (width, _) = area.dim_in_pixel();
    area.split_horizontally(width.saturating_sub(legend_width))
}

/// A colour swatch and the name of each series, top to bottom.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(&str, RGBColor)],
    family: &str,
) -> DrawResult<DB> {
    let style =
        TextStyle::from((family, LEGEND_FONT_SIZE).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (y, (name, fill)) in (40_i32..).step_by(24).zip(entries) {
        area.draw(&Rectangle::new([(8, y - 7), (22, y + 7)], fill.filled()))?;
        area.draw(&Text::new(*name, (30, y), style.clone()))?;
    }
    Ok(())
}

/// The x axis of the bar chart: workload `index` spans `index..index + 1`, its label and tick
/// sit at the centre (a plain `f64` axis would put ticks at round numbers between groups).
struct WorkloadAxis {
    count: usize,
}

impl Ranged for WorkloadAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let fraction = value / self.count as f64;
        limit.0 + (fraction * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        (0..self.count).map(|index| index as f64 + 0.5).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.count as f64
    }
}

/// The SVG backend with a text-size estimate when no font is loaded: SVG text is drawn by the
/// viewer, so only the layout (label areas, legend boxes) needs sizes, and an estimate of
/// 0.6 em per character is close enough for it.
struct SvgText<'a> {
    inner: SVGBackend<'a>,
}

impl DrawingBackend for SvgText<'_> {
    type ErrorType = <SVGBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: plotters_backend::BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: plotters_backend::BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: plotters_backend::BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn draw_text<S: plotters_backend::BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_text(text, style, pos)
    }

    fn estimate_text_size<S: plotters_backend::BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        self.inner.estimate_text_size(text, style).or_else(|_| {
            let size = plotters_backend::BackendTextStyle::size(style);
            Ok(((text.chars().count() as f64 * size * 0.6) as u32, size as u32))
        })
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test")]

    use super::*;

    fn result(target: &str, variant: &str, workload: &str, resources: u64, ops_per_s: f64) -> RunResult {
        RunResult {
            target: target.to_owned(),
            variant: variant.to_owned(),
            durability: "fsync".to_owned(),
            durable: true,
            workload: workload.to_owned(),
            resources,
            clients: 32,
            ops_per_s,
            wins_per_s: ops_per_s / 4.0,
            latency_cdf: vec![(0.0, 50), (50.0, 200), (99.0, 2_000), (100.0, 9_000)],
            ..RunResult::default()
        }
    }

    fn synthetic() -> Vec<RunResult> {
        let mut results = Vec::new();
        for rep in 0..3 {
            let wobble = 1.0 + f64::from(rep) * 0.1;
            results.push(result("allocdb", "binary", "uncontended", 100_000, 250_000.0 * wobble));
            results.push(result("postgres", "fn", "uncontended", 100_000, 3_000.0 * wobble));
            results.push(result("redis", "lua", "uncontended", 100_000, 3_300.0 * wobble));
            results.push(result("allocdb", "binary", "hotspot", 1, 40_000.0 * wobble));
            results.push(result("postgres", "fn", "hotspot", 1, 30.0 * wobble));
        }
        results
    }

    #[test]
    fn chart_data_has_one_bar_per_configuration_with_its_median_and_range() {
        let (throughput, cdfs) = chart_data(&synthetic());
        assert_eq!(throughput.workloads, ["uncontended", "hotspot1"]);
        assert_eq!(throughput.series, ["allocdb binary", "postgres fn", "redis lua"]);
        assert_eq!(throughput.bars.len(), 5);
        let hotspot_postgres =
            throughput.bars.iter().find(|bar| bar.workload_index == 1 && bar.series_index == 1).unwrap();
        // Hotspot bars are hand-overs per second (wins/s = ops/s ÷ 4 here).
        assert!((hotspot_postgres.median - 30.0 * 1.1 / 4.0).abs() < 1e-9);
        assert!((hotspot_postgres.min - 30.0 / 4.0).abs() < 1e-9);
        assert!((hotspot_postgres.max - 30.0 * 1.2 / 4.0).abs() < 1e-9);
        assert_eq!(cdfs.len(), 2);
        assert_eq!(cdfs[0].lines.len(), 3);
        assert_eq!(cdfs[1].lines.len(), 2);
    }

    #[test]
    fn plots_are_written_as_svg_naming_every_series_and_png_when_a_font_exists() {
        let dir = tempfile::tempdir().unwrap();
        let report = write_plots(&synthetic(), dir.path()).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("throughput.svg")).unwrap();
        assert!(svg.starts_with("<svg"));
        for name in ["allocdb binary", "postgres fn", "redis lua", "uncontended", "hotspot1"] {
            assert!(svg.contains(name), "throughput.svg lacks {name}");
        }
        let cdf = std::fs::read_to_string(dir.path().join("latency-cdf-hotspot1.svg")).unwrap();
        assert!(cdf.contains("allocdb binary") && cdf.contains("postgres fn") && !cdf.contains("redis lua"));
        match &report.png_skipped {
            None => {
                for name in ["throughput.png", "latency-cdf-uncontended.png", "latency-cdf-hotspot1.png"] {
                    let png = std::fs::read(dir.path().join(name)).unwrap();
                    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is not a PNG");
                    assert!(png.len() > 10_000, "{name} is only {} bytes", png.len());
                }
                assert_eq!(report.files.len(), 6);
            }
            Some(reason) => {
                eprintln!("no font on this machine, PNGs skipped: {reason}");
                assert!(!dir.path().join("throughput.png").exists());
                assert_eq!(report.files.len(), 3);
            }
        }
    }

    #[test]
    fn svgs_are_written_without_any_font_and_pngs_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let report =
            write_plots_with(&synthetic(), dir.path(), "allocdb-no-such-font", Some("no font".to_owned()))
                .unwrap();
        assert_eq!(report.files.len(), 3);
        let svg = std::fs::read_to_string(dir.path().join("throughput.svg")).unwrap();
        assert!(svg.contains("allocdb-no-such-font") && svg.contains("redis lua"));
        assert!(!dir.path().join("throughput.png").exists());
    }

    #[test]
    fn log_ticks_name_one_two_and_five_per_decade_only() {
        let labels: Vec<String> = [1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 20_000.0, 40_000.0, 50_000.0, 0.5, 0.0]
            .into_iter()
            .map(log_tick_label)
            .collect();
        assert_eq!(labels, ["1.0", "2.0", "", "5.0", "", "10.0", "20,000", "", "50,000", "0.5", ""]);
    }

    #[test]
    fn no_results_write_no_plots() {
        let dir = tempfile::tempdir().unwrap();
        let report = write_plots(&[], dir.path()).unwrap();
        assert!(report.files.is_empty());
    }
}

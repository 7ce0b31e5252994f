//! The styled banner for display: a small virtual terminal that turns server bytes into rows
//! of styled text runs. This is iacscope's own rendering, not telnetlib3's; the web app shows
//! the runs as text nodes with style classes.
//!
//! Parsing is `vte::Parser` with our own `Perform` (vte's `ansi::Processor` reads a clock).
//! The grid is [`DEFAULT_COLUMNS`] wide and grows downwards up to [`MAX_SCREEN_ROWS`]; output
//! that would land below that is dropped. Conventions follow BBS terminals where they differ
//! from xterm: LF also returns to column 1 (servers send bare LF and mean a new line), and
//! `ESC[2J` homes the cursor (ANSI.SYS, SyncTERM).

use serde::{Deserialize, Serialize};
use vte::{Params, Parser, Perform};

use super::wcwidth;

/// Width of the virtual terminal, in cells.
pub const DEFAULT_COLUMNS: usize = 80;
/// Rows kept; text that would go below the last one is dropped.
pub const MAX_SCREEN_ROWS: usize = 1000;
/// Bytes of input rendered; the rest is ignored.
pub const MAX_RENDER_BYTES: usize = 256 * 1024;
/// Cells that erase sequences may blank in one render: `ESC[41m ESC[1J` repeated would
/// otherwise cost rows × columns per nine input bytes.
pub const MAX_ERASE_CELLS: usize = 4 * 1024 * 1024;
/// Tab stops every this many columns.
const TAB_WIDTH: usize = 8;

/// A colour as the server set it; mapping palette indices (and bold + 0–7 brightening) to
/// actual colours is the UI's choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Color {
    /// The terminal's default foreground or background.
    #[default]
    Default,
    /// Palette index: 0–7 normal, 8–15 bright (SGR 90–97 / 100–107), 16–255 the xterm cube
    /// and grey ramp.
    Indexed(u8),
    /// 24-bit colour.
    Rgb(u8, u8, u8),
}

/// SGR attributes of a run of text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Style {
    pub fg: Color,
    pub bg: Color,
    pub bold: bool,
    pub faint: bool,
    pub italic: bool,
    pub underline: bool,
    pub blink: bool,
    pub inverse: bool,
    pub strike: bool,
}

/// Consecutive cells of one row that share a style.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub text: String,
    pub style: Style,
}

/// A rendered banner: rows top to bottom, each a list of runs left to right. Trailing
/// unstyled blanks are left out, and rows end at the last row written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Screen {
    pub rows: Vec<Vec<Run>>,
}

impl Screen {
    /// The text without styles: rows joined with `\n`, trailing spaces trimmed.
    pub fn plain_text(&self) -> String {
        let lines: Vec<String> = self
            .rows
            .iter()
            .map(|row| {
                let line: String = row.iter().map(|run| run.text.as_str()).collect();
                line.trim_end_matches(' ').to_owned()
            })
            .collect();
        lines.join("\n")
    }
}

/// Render server output: decode `bytes` (at most [`MAX_RENDER_BYTES`]) with the Python codec
/// `encoding` (unknown names mean latin-1), then interpret text, C0 controls and escape
/// sequences on a virtual terminal. Unknown sequences are ignored.
pub fn render(bytes: &[u8], encoding: &str) -> Screen {
    render_with(bytes, encoding, DEFAULT_COLUMNS)
}

/// Terminal widths the page offers (`render_with` clamps to this range).
pub const COLUMN_RANGE: core::ops::RangeInclusive<usize> = 40..=240;

/// [`render`] on a terminal `cols` wide (clamped to [`COLUMN_RANGE`]). For the East Asian
/// encodings ([`crate::charset::is_east_asian`]) ambiguous-width characters (box drawing, Greek,
/// Cyrillic, …) are drawn two columns wide, as CJK terminals draw them.
pub fn render_with(bytes: &[u8], encoding: &str, cols: usize) -> Screen {
    let input = bytes.get(..MAX_RENDER_BYTES).unwrap_or(bytes);
    // Escape sequences are ASCII and survive decoding; vte wants UTF-8.
    let text = crate::codec::decode_lossy(encoding, input);
    let mut term = Term::new(cols.clamp(*COLUMN_RANGE.start(), *COLUMN_RANGE.end()));
    term.wide_ambiguous = crate::charset::is_east_asian(encoding);
    let mut parser: Parser = Parser::new();
    parser.advance(&mut term, text.as_bytes());
    term.into_screen()
}

/// One grid cell. `ch == WIDE_TAIL` marks the right half of a wide character.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Cell {
    ch: char,
    /// One combining (zero-width) character drawn over `ch`, if any.
    mark: Option<char>,
    style: Style,
}

const WIDE_TAIL: char = '\0';

const BLANK: Cell = Cell {
    ch: ' ',
    mark: None,
    style: Style {
        fg: Color::Default,
        bg: Color::Default,
        bold: false,
        faint: false,
        italic: false,
        underline: false,
        blink: false,
        inverse: false,
        strike: false,
    },
};

struct Saved {
    row: usize,
    col: usize,
    style: Option<Style>,
}

struct Term {
    cols: usize,
    grid: Vec<Vec<Cell>>,
    /// 0-based; may equal `MAX_SCREEN_ROWS`, the row where output is dropped.
    row: usize,
    /// 0-based, always `< cols`.
    col: usize,
    /// The last column was written: the next printable character wraps first (VT100).
    wrap_pending: bool,
    style: Style,
    saved: Option<Saved>,
    /// What is left of [`MAX_ERASE_CELLS`].
    erase_budget: usize,
    /// Ambiguous-width characters take two columns (CJK terminals).
    wide_ambiguous: bool,
}

impl Term {
    fn new(cols: usize) -> Self {
        Term {
            cols: cols.max(1),
            grid: Vec::new(),
            row: 0,
            col: 0,
            wrap_pending: false,
            style: Style::default(),
            saved: None,
            erase_budget: MAX_ERASE_CELLS,
            wide_ambiguous: false,
        }
    }

    fn into_screen(self) -> Screen {
        let rows = self
            .grid
            .iter()
            .map(|cells| {
                let used = cells.iter().rposition(|c| *c != BLANK).map_or(0, |i| i + 1);
                let mut runs: Vec<Run> = Vec::new();
                for cell in cells.iter().take(used).filter(|c| c.ch != WIDE_TAIL) {
                    match runs.last_mut() {
                        Some(run) if run.style == cell.style => run.text.push(cell.ch),
                        _ => runs.push(Run {
                            text: cell.ch.to_string(),
                            style: cell.style,
                        }),
                    }
                    if let (Some(mark), Some(run)) = (cell.mark, runs.last_mut()) {
                        run.text.push(mark);
                    }
                }
                runs
            })
            .collect();
        Screen { rows }
    }

    /// The cells of `row`, created (with the rows above it) when missing.
    fn row_mut(&mut self, row: usize) -> Option<&mut Vec<Cell>> {
        if row >= MAX_SCREEN_ROWS {
            return None;
        }
        if self.grid.len() <= row {
            self.grid.resize_with(row + 1, Vec::new);
        }
        self.grid.get_mut(row)
    }

    fn put_cell(&mut self, row: usize, col: usize, cell: Cell) {
        if let Some(cells) = self.row_mut(row) {
            if cells.len() <= col {
                cells.resize(col + 1, BLANK);
            }
            // Overwriting half of a wide character blanks its other half.
            if cells[col].ch == WIDE_TAIL && cell.ch != WIDE_TAIL && col > 0 {
                cells[col - 1] = BLANK;
            }
            if cells.get(col + 1).is_some_and(|next| next.ch == WIDE_TAIL) {
                cells[col + 1] = BLANK;
            }
            cells[col] = cell;
        }
    }

    fn line_feed(&mut self) {
        self.row = (self.row + 1).min(MAX_SCREEN_ROWS);
        self.col = 0;
        self.wrap_pending = false;
    }

    fn print_char(&mut self, ch: char) {
        let mut width = wcwidth::width(ch) as usize;
        if self.wide_ambiguous && width == 1 {
            width = <char as unicode_width::UnicodeWidthChar>::width_cjk(ch)
                .unwrap_or(1)
                .max(1);
        }
        if width == 0 {
            // Combining mark: attach to the cell just written.
            let mut col = if self.wrap_pending {
                self.col
            } else {
                self.col.saturating_sub(1)
            };
            let Some(cells) = self.grid.get_mut(self.row) else {
                return;
            };
            if col > 0 && cells.get(col).is_some_and(|c| c.ch == WIDE_TAIL) {
                col -= 1;
            }
            if let Some(cell) = cells.get_mut(col).filter(|c| c.mark.is_none()) {
                cell.mark = Some(ch);
            }
            return;
        }
        let width = width.min(self.cols);
        if self.wrap_pending || self.col + width > self.cols {
            self.line_feed();
        }
        let cell = Cell {
            ch,
            mark: None,
            style: self.style,
        };
        self.put_cell(self.row, self.col, cell);
        for extra in 1..width {
            let tail = Cell {
                ch: WIDE_TAIL,
                ..cell
            };
            self.put_cell(self.row, self.col + extra, tail);
        }
        let next = self.col + width;
        if next >= self.cols {
            self.col = self.cols - 1;
            self.wrap_pending = true;
        } else {
            self.col = next;
        }
    }

    /// Blank `cols` of `row` with the current background (VT100 erase), within the budget.
    fn erase(&mut self, row: usize, cols: core::ops::Range<usize>) {
        let cols = cols.start..cols.end.min(self.cols);
        let Some(budget) = self.erase_budget.checked_sub(cols.len()) else {
            self.erase_budget = 0;
            return;
        };
        self.erase_budget = budget;
        let blank = Cell {
            style: Style {
                bg: self.style.bg,
                ..Style::default()
            },
            ..BLANK
        };
        let Some(cells) = self.grid.get_mut(row) else {
            if blank != BLANK {
                for col in cols {
                    self.put_cell(row, col, blank);
                }
            }
            return;
        };
        if blank == BLANK {
            let end = cols.end.min(cells.len());
            for cell in cells.get_mut(cols.start.min(end)..end).unwrap_or_default() {
                *cell = BLANK;
            }
        } else {
            for col in cols {
                self.put_cell(row, col, blank);
            }
        }
    }

    fn move_to(&mut self, row: usize, col: usize) {
        self.row = row.min(MAX_SCREEN_ROWS);
        self.col = col.min(self.cols - 1);
        self.wrap_pending = false;
    }

    fn sgr(&mut self, params: &Params) {
        let mut groups = params.iter();
        while let Some(group) = groups.next() {
            let code = group.first().copied().unwrap_or(0);
            let s = &mut self.style;
            match code {
                0 => *s = Style::default(),
                1 => s.bold = true,
                2 => s.faint = true,
                3 => s.italic = true,
                // `4:0` is "no underline" in the colon form.
                4 => s.underline = group.get(1) != Some(&0),
                5 | 6 => s.blink = true,
                7 => s.inverse = true,
                9 => s.strike = true,
                21 => s.underline = true,
                22 => {
                    s.bold = false;
                    s.faint = false;
                }
                23 => s.italic = false,
                24 => s.underline = false,
                25 => s.blink = false,
                27 => s.inverse = false,
                29 => s.strike = false,
                30..=37 => s.fg = Color::Indexed((code - 30) as u8),
                39 => s.fg = Color::Default,
                40..=47 => s.bg = Color::Indexed((code - 40) as u8),
                49 => s.bg = Color::Default,
                90..=97 => s.fg = Color::Indexed((code - 90 + 8) as u8),
                100..=107 => s.bg = Color::Indexed((code - 100 + 8) as u8),
                38 | 48 => {
                    let color = if group.len() > 1 {
                        extended_color_colon(&group[1..])
                    } else {
                        extended_color_semicolon(&mut groups)
                    };
                    if let Some(color) = color {
                        if code == 38 {
                            s.fg = color;
                        } else {
                            s.bg = color;
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn byte(value: u16) -> Option<u8> {
    u8::try_from(value).ok()
}

/// `38:5:n`, `38:2:r:g:b` or `38:2:<colour space>:r:g:b` (ITU T.416 colon form).
fn extended_color_colon(sub: &[u16]) -> Option<Color> {
    match *sub {
        [5, n, ..] => byte(n).map(Color::Indexed),
        [2, _colour_space, r, g, b, ..] => Some(Color::Rgb(byte(r)?, byte(g)?, byte(b)?)),
        [2, r, g, b] => Some(Color::Rgb(byte(r)?, byte(g)?, byte(b)?)),
        _ => None,
    }
}

/// `38;5;n` or `38;2;r;g;b` (the common semicolon form), consuming the parameters it uses.
fn extended_color_semicolon<'a>(groups: &mut impl Iterator<Item = &'a [u16]>) -> Option<Color> {
    let mut next = || groups.next().and_then(|g| g.first().copied());
    match next()? {
        5 => byte(next()?).map(Color::Indexed),
        2 => {
            let (r, g, b) = (next()?, next()?, next()?);
            Some(Color::Rgb(byte(r)?, byte(g)?, byte(b)?))
        }
        _ => None,
    }
}

/// The first parameter, with 0 or missing meaning `default`.
fn arg(params: &Params, index: usize, default: u16) -> usize {
    let value = params
        .iter()
        .nth(index)
        .and_then(|g| g.first().copied())
        .unwrap_or(0);
    usize::from(if value == 0 { default } else { value })
}

impl Perform for Term {
    fn print(&mut self, ch: char) {
        self.print_char(ch);
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\r' => {
                self.col = 0;
                self.wrap_pending = false;
            }
            b'\n' | 0x0B | 0x0C => self.line_feed(),
            0x08 => {
                self.col = self.col.saturating_sub(1);
                self.wrap_pending = false;
            }
            b'\t' => {
                let next = (self.col / TAB_WIDTH + 1) * TAB_WIDTH;
                self.col = next.min(self.cols - 1);
            }
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, params: &Params, intermediates: &[u8], ignore: bool, action: char) {
        // Private (`ESC[?…`) and intermediate forms are modes and queries, not drawing.
        if ignore || !intermediates.is_empty() {
            return;
        }
        let n = arg(params, 0, 1);
        match action {
            'm' => self.sgr(params),
            'A' => self.move_to(self.row.saturating_sub(n), self.col),
            'B' => self.move_to(self.row.saturating_add(n), self.col),
            'C' => self.move_to(self.row, self.col.saturating_add(n)),
            'D' => self.move_to(self.row, self.col.saturating_sub(n)),
            'E' => self.move_to(self.row.saturating_add(n), 0),
            'F' => self.move_to(self.row.saturating_sub(n), 0),
            'G' | '`' => self.move_to(self.row, n - 1),
            'd' => self.move_to(n - 1, self.col),
            'H' | 'f' => self.move_to(n - 1, arg(params, 1, 1) - 1),
            'J' => {
                let (row, col) = (self.row, self.col);
                match arg(params, 0, 0) {
                    0 => {
                        self.erase(row, col..self.cols);
                        self.grid.truncate(row + 1);
                    }
                    1 => {
                        for above in 0..row.min(self.grid.len()) {
                            self.erase(above, 0..self.cols);
                        }
                        self.erase(row, 0..col + 1);
                    }
                    2 | 3 => {
                        self.grid.clear();
                        self.move_to(0, 0);
                    }
                    _ => {}
                }
            }
            'K' => {
                let (row, col) = (self.row, self.col);
                match arg(params, 0, 0) {
                    0 => self.erase(row, col..self.cols),
                    1 => self.erase(row, 0..col + 1),
                    2 => self.erase(row, 0..self.cols),
                    _ => {}
                }
            }
            's' => {
                self.saved = Some(Saved {
                    row: self.row,
                    col: self.col,
                    style: None,
                });
            }
            'u' => self.restore(),
            _ => {}
        }
    }

    fn esc_dispatch(&mut self, intermediates: &[u8], _ignore: bool, byte: u8) {
        if !intermediates.is_empty() {
            return;
        }
        match byte {
            b'7' => {
                self.saved = Some(Saved {
                    row: self.row,
                    col: self.col,
                    style: Some(self.style),
                });
            }
            b'8' => self.restore(),
            // NEL.
            b'E' => self.line_feed(),
            _ => {}
        }
    }
}

impl Term {
    fn restore(&mut self) {
        if let Some(saved) = &self.saved {
            let (row, col, style) = (saved.row, saved.col, saved.style);
            self.move_to(row, col);
            if let Some(style) = style {
                self.style = style;
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! Themes: `assets/themes/{dark,light,high-contrast}.toml`, or a file the
//! config names, as partial overrides of the dark theme. `NO_COLOR` turns
//! every colour off; emphasis then comes from bold, underline and reverse.

use std::collections::BTreeMap;
use std::path::Path;

use ratatui::style::{Color, Modifier, Style};

use crate::model::SagaStatus;

pub const DARK: &str = include_str!("../../assets/themes/dark.toml");
pub const LIGHT: &str = include_str!("../../assets/themes/light.toml");
pub const HIGH_CONTRAST: &str = include_str!("../../assets/themes/high-contrast.toml");

/// Why a theme could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("cannot read theme file {path}: {source} (use dark, light, high-contrast or a readable file)")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid theme {name}: {message}")]
    Parse { name: String, message: String },
}

/// Colours by role.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub colour: bool,
    pub text: Color,
    pub dim: Color,
    pub accent: Color,
    pub border: Color,
    pub border_focus: Color,
    pub selected_fg: Color,
    pub selected_bg: Color,
    pub header_fg: Color,
    pub header_bg: Color,
    pub ok: Color,
    pub running: Color,
    pub failed: Color,
    pub compensating: Color,
    pub warning: Color,
    pub added: Color,
    pub removed: Color,
    pub changed: Color,
    pub key: Color,
    pub string: Color,
    pub number: Color,
    pub match_bg: Color,
}

fn parse_colour(name: &str, v: &str) -> Result<Color, String> {
    let c = match v.to_ascii_lowercase().as_str() {
        "reset" | "default" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "darkgray" | "darkgrey" => Color::DarkGray,
        "lightred" => Color::LightRed,
        "lightgreen" => Color::LightGreen,
        "lightyellow" => Color::LightYellow,
        "lightblue" => Color::LightBlue,
        "lightmagenta" => Color::LightMagenta,
        "lightcyan" => Color::LightCyan,
        "white" => Color::White,
        hex if hex.starts_with('#') && hex.len() == 7 => {
            let p = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16);
            match (p(1), p(3), p(5)) {
                (Ok(r), Ok(g), Ok(b)) => Color::Rgb(r, g, b),
                _ => return Err(format!("{name}: invalid colour {v:?}")),
            }
        }
        _ => {
            return Err(format!(
                "{name}: unknown colour {v:?} (a colour name or #rrggbb)"
            ))
        }
    };
    Ok(c)
}

impl Theme {
    /// A theme by name (`dark`, `light`, `high-contrast`) or file path.
    pub fn load(name: Option<&str>, no_color: bool) -> Result<Theme, ThemeError> {
        let name = name.unwrap_or("dark");
        let text = match name {
            "dark" => DARK.to_string(),
            "light" => LIGHT.to_string(),
            "high-contrast" => HIGH_CONTRAST.to_string(),
            path => {
                std::fs::read_to_string(Path::new(path)).map_err(|source| ThemeError::Read {
                    path: path.to_string(),
                    source,
                })?
            }
        };
        let mut theme = Theme::parse(&text).map_err(|message| ThemeError::Parse {
            name: name.to_string(),
            message,
        })?;
        if no_color {
            theme = theme.without_colour();
        }
        Ok(theme)
    }

    /// Whether `NO_COLOR` is set (to anything non-empty; see no-color.org).
    pub fn no_color_env() -> bool {
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
    }

    /// The dark theme with `text`'s keys on top.
    pub fn parse(text: &str) -> Result<Theme, String> {
        let base: BTreeMap<String, String> = toml::from_str(DARK).map_err(|e| e.to_string())?;
        let over: BTreeMap<String, String> = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut all = base;
        for (k, v) in over {
            if !all.contains_key(&k) {
                return Err(format!("unknown key {k:?}"));
            }
            all.insert(k, v);
        }
        let get = |k: &str| -> Result<Color, String> {
            parse_colour(k, all.get(k).map(String::as_str).unwrap_or("reset"))
        };
        Ok(Theme {
            colour: true,
            text: get("text")?,
            dim: get("dim")?,
            accent: get("accent")?,
            border: get("border")?,
            border_focus: get("border_focus")?,
            selected_fg: get("selected_fg")?,
            selected_bg: get("selected_bg")?,
            header_fg: get("header_fg")?,
            header_bg: get("header_bg")?,
            ok: get("ok")?,
            running: get("running")?,
            failed: get("failed")?,
            compensating: get("compensating")?,
            warning: get("warning")?,
            added: get("added")?,
            removed: get("removed")?,
            changed: get("changed")?,
            key: get("key")?,
            string: get("string")?,
            number: get("number")?,
            match_bg: get("match_bg")?,
        })
    }

    /// Every colour reset: what `NO_COLOR` asks for.
    pub fn without_colour(self) -> Theme {
        Theme::plain()
    }

    /// No colours at all.
    pub fn plain() -> Theme {
        let r = Color::Reset;
        Theme {
            colour: false,
            text: r,
            dim: r,
            accent: r,
            border: r,
            border_focus: r,
            selected_fg: r,
            selected_bg: r,
            header_fg: r,
            header_bg: r,
            ok: r,
            running: r,
            failed: r,
            compensating: r,
            warning: r,
            added: r,
            removed: r,
            changed: r,
            key: r,
            string: r,
            number: r,
            match_bg: r,
        }
    }

    /// The default theme (a unit test checks the shipped file parses).
    pub fn dark() -> Theme {
        Theme::parse(DARK).unwrap_or_else(|_| Theme::plain())
    }

    pub fn fg(&self, c: Color) -> Style {
        Style::default().fg(c)
    }

    pub fn selected(&self) -> Style {
        if self.colour {
            Style::default().fg(self.selected_fg).bg(self.selected_bg)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }

    pub fn header(&self) -> Style {
        if self.colour {
            Style::default().fg(self.header_fg).bg(self.header_bg)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    pub fn border(&self, focused: bool) -> Style {
        if focused {
            Style::default()
                .fg(self.border_focus)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(self.border)
        }
    }

    pub fn search_match(&self) -> Style {
        if self.colour {
            Style::default().bg(self.match_bg).fg(Color::Black)
        } else {
            Style::default().add_modifier(Modifier::UNDERLINED | Modifier::BOLD)
        }
    }

    /// Colour of a saga status.
    pub fn status(&self, s: &SagaStatus) -> Style {
        let c = match s {
            SagaStatus::Completed => self.ok,
            SagaStatus::Executing | SagaStatus::Pending | SagaStatus::ForwardRecovery => {
                self.running
            }
            SagaStatus::Compensating => self.compensating,
            SagaStatus::Failed | SagaStatus::RolledBack | SagaStatus::PartiallyCommitted => {
                self.failed
            }
            SagaStatus::Other(_) => self.warning,
        };
        let st = Style::default().fg(c);
        if !self.colour && s.is_failure() {
            st.add_modifier(Modifier::BOLD)
        } else {
            st
        }
    }
}

/// The glyph of a status: distinct shapes, so status reads without colour.
pub fn status_glyph(s: &SagaStatus) -> &'static str {
    match s {
        SagaStatus::Completed => "✔",
        SagaStatus::Executing => "●",
        SagaStatus::Pending => "○",
        SagaStatus::Compensating => "↺",
        SagaStatus::Failed => "✖",
        SagaStatus::RolledBack => "⟲",
        SagaStatus::PartiallyCommitted => "◐",
        SagaStatus::ForwardRecovery => "↻",
        SagaStatus::Other(_) => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_themes_parse() {
        for (name, text) in [
            ("dark", DARK),
            ("light", LIGHT),
            ("high-contrast", HIGH_CONTRAST),
        ] {
            Theme::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn no_color_resets_everything() {
        let t = Theme::load(Some("light"), true).unwrap();
        assert!(!t.colour);
        assert_eq!(t.failed, Color::Reset);
        assert!(Theme::parse("bogus = \"red\"").is_err());
        assert!(Theme::parse("failed = \"#zz0000\"").is_err());
    }
}

//! Editing a one-line input (the filter, the palette, search, the replay
//! prompts) as readline does: a cursor that ←/→, Home/End (C-a/C-e) move,
//! Backspace/Delete, C-u (to the start), C-k (to the end), C-w (the word
//! before the cursor).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key did to the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edited {
    /// The text changed (the cursor may have moved too).
    Text,
    /// Only the cursor moved.
    Cursor,
    /// Not an editing key.
    No,
}

/// Applies an editing key to `text` with the cursor at byte `cursor`
/// (kept on a char boundary).
pub fn edit(text: &mut String, cursor: &mut usize, k: &KeyEvent) -> Edited {
    *cursor = (*cursor).min(text.len());
    while !text.is_char_boundary(*cursor) {
        *cursor -= 1;
    }
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    let before = |t: &str, at: usize| {
        t[..at]
            .chars()
            .next_back()
            .map_or(at, |c| at - c.len_utf8())
    };
    let after = |t: &str, at: usize| t[at..].chars().next().map_or(at, |c| at + c.len_utf8());
    match k.code {
        KeyCode::Char('a') if ctrl => return move_to(cursor, 0),
        KeyCode::Home => return move_to(cursor, 0),
        KeyCode::Char('e') if ctrl => return move_to(cursor, text.len()),
        KeyCode::End => return move_to(cursor, text.len()),
        KeyCode::Left => return move_to(cursor, before(text, *cursor)),
        KeyCode::Char('b') if ctrl => return move_to(cursor, before(text, *cursor)),
        KeyCode::Right => return move_to(cursor, after(text, *cursor)),
        KeyCode::Char('f') if ctrl => return move_to(cursor, after(text, *cursor)),
        KeyCode::Backspace if *cursor > 0 => {
            let from = before(text, *cursor);
            text.replace_range(from..*cursor, "");
            *cursor = from;
        }
        KeyCode::Delete | KeyCode::Char('d') if ctrl || k.code == KeyCode::Delete => {
            if *cursor == text.len() {
                return Edited::No;
            }
            let to = after(text, *cursor);
            text.replace_range(*cursor..to, "");
        }
        KeyCode::Char('u') if ctrl => {
            if *cursor == 0 {
                return Edited::No;
            }
            text.replace_range(..*cursor, "");
            *cursor = 0;
        }
        KeyCode::Char('k') if ctrl => {
            if *cursor == text.len() {
                return Edited::No;
            }
            text.truncate(*cursor);
        }
        KeyCode::Char('w') if ctrl => {
            // The word before the cursor and the spaces after it, as readline.
            let head = &text[..*cursor];
            let word_end = head.trim_end().len();
            let from = head[..word_end]
                .char_indices()
                .rev()
                .find(|(_, c)| c.is_whitespace())
                .map_or(0, |(i, c)| i + c.len_utf8());
            if from == *cursor {
                return Edited::No;
            }
            text.replace_range(from..*cursor, "");
            *cursor = from;
        }
        KeyCode::Char(c) if !ctrl && !k.modifiers.contains(KeyModifiers::ALT) => {
            text.insert(*cursor, c);
            *cursor += c.len_utf8();
        }
        _ => return Edited::No,
    }
    Edited::Text
}

fn move_to(cursor: &mut usize, to: usize) -> Edited {
    *cursor = to;
    Edited::Cursor
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: &str, at: usize, keys: &[KeyEvent]) -> (String, usize) {
        let mut t = start.to_string();
        let mut c = at;
        for k in keys {
            edit(&mut t, &mut c, k);
        }
        (t, c)
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    #[test]
    fn typing_goes_where_the_cursor_is() {
        let (t, c) = run(
            "status:faild",
            12,
            &[key(KeyCode::Left), key(KeyCode::Char('e'))],
        );
        assert_eq!((t.as_str(), c), ("status:failed", 12));
        let (t, c) = run("trip", 4, &[key(KeyCode::Home), key(KeyCode::Char('x'))]);
        assert_eq!((t.as_str(), c), ("xtrip", 1));
        let (t, _) = run("trip", 0, &[ctrl('e'), key(KeyCode::Char('s'))]);
        assert_eq!(t, "trips");
    }

    #[test]
    fn c_u_c_w_c_k_and_delete_cut_as_readline_does() {
        assert_eq!(
            run("status:failed trip", 18, &[ctrl('w')]),
            ("status:failed ".into(), 14)
        );
        assert_eq!(
            run("status:failed trip  ", 20, &[ctrl('w')]),
            ("status:failed ".into(), 14)
        );
        assert_eq!(
            run("status:failed trip", 14, &[ctrl('u')]),
            ("trip".into(), 0)
        );
        assert_eq!(
            run("status:failed trip", 13, &[ctrl('k')]),
            ("status:failed".into(), 13)
        );
        assert_eq!(run("ab", 0, &[key(KeyCode::Delete)]), ("b".into(), 0));
        assert_eq!(run("ab", 0, &[key(KeyCode::Backspace)]), ("ab".into(), 0));
        assert_eq!(run("é€x", 5, &[key(KeyCode::Backspace)]), ("éx".into(), 2));
        assert_eq!(
            edit(&mut "ab".to_string(), &mut 2, &ctrl('r')),
            Edited::No,
            "not an editing key"
        );
    }
}

//! A small reader for the subset of EDN that Jepsen and Porcupine histories
//! use: maps, vectors, lists, sets, keywords, strings, integers, floats,
//! symbols, `nil`, booleans, comments and tagged literals (the tag is
//! dropped and the tagged form kept, so `#jepsen.history.Op{...}` reads as
//! a map). Commas are whitespace, as in EDN.

use std::fmt;

/// One EDN value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Keyword(String),
    Symbol(String),
    /// Vectors, lists and sets alike: the history readers need only the items.
    Seq(Vec<Edn>),
    Map(Vec<(Edn, Edn)>),
}

impl Edn {
    /// The value under keyword `:name` in a map.
    pub(crate) fn get(&self, name: &str) -> Option<&Edn> {
        match self {
            Edn::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| matches!(k, Edn::Keyword(n) if n == name))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

impl fmt::Display for Edn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edn::Nil => write!(f, "nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{i}"),
            Edn::Float(x) => write!(f, "{x}"),
            Edn::Str(s) => write!(f, "{s:?}"),
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::Symbol(s) => write!(f, "{s}"),
            Edn::Seq(items) => {
                write!(f, "[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, " ")?;
                    }
                    write!(f, "{item}")?;
                }
                write!(f, "]")
            }
            Edn::Map(pairs) => {
                write!(f, "{{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                write!(f, "}}")
            }
        }
    }
}

/// A syntax error, with the 1-based line where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EdnError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// Reads EDN forms one after another, tracking the current line.
pub(crate) struct Reader<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
    open_vectors: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Reader {
            text: text.as_bytes(),
            pos: 0,
            line: 1,
            open_vectors: 0,
        }
    }

    /// The next top-level form with the line it starts on, or `None` at
    /// the end of the text. A
    /// top-level vector is read item by item (Jepsen may write a whole
    /// history as one vector), so each item's line is known.
    pub(crate) fn next_form(&mut self) -> Result<Option<(usize, Edn)>, EdnError> {
        loop {
            self.skip_blank();
            match self.peek() {
                None if self.open_vectors > 0 => return Err(self.error("missing closing `]`")),
                None => return Ok(None),
                Some(b'[') => self.open_vectors += 1,
                Some(b']') if self.open_vectors > 0 => self.open_vectors -= 1,
                Some(_) => return Ok(Some((self.line, self.form()?))),
            }
            self.bump();
        }
    }

    fn error(&self, message: impl Into<String>) -> EdnError {
        EdnError {
            line: self.line,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_blank(&mut self) {
        while let Some(c) = self.peek() {
            if c == b';' {
                while self.peek().is_some_and(|c| c != b'\n') {
                    self.bump();
                }
            } else if c.is_ascii_whitespace() || c == b',' {
                self.bump();
            } else {
                break;
            }
        }
    }

    fn form(&mut self) -> Result<Edn, EdnError> {
        self.skip_blank();
        let Some(c) = self.peek() else {
            return Err(self.error("unexpected end of input"));
        };
        match c {
            b'{' => {
                self.bump();
                let items = self.items(b'}')?;
                if items.len() % 2 != 0 {
                    return Err(self.error("map with an odd number of forms"));
                }
                let mut pairs = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                Ok(Edn::Map(pairs))
            }
            b'[' => {
                self.bump();
                self.items(b']').map(Edn::Seq)
            }
            b'(' => {
                self.bump();
                self.items(b')').map(Edn::Seq)
            }
            b'#' => {
                self.bump();
                if self.peek() == Some(b'{') {
                    self.bump();
                    return self.items(b'}').map(Edn::Seq);
                }
                self.token()?;
                self.form()
            }
            b'"' => self.string(),
            b'}' | b']' | b')' => Err(self.error(format!("unexpected `{}`", c as char))),
            _ => {
                let token = self.token()?;
                Ok(atom(token))
            }
        }
    }

    fn items(&mut self, close: u8) -> Result<Vec<Edn>, EdnError> {
        let mut items = Vec::new();
        loop {
            self.skip_blank();
            match self.peek() {
                None => {
                    return Err(self.error(format!("missing closing `{}`", close as char)));
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(_) => items.push(self.form()?),
            }
        }
    }

    fn string(&mut self) -> Result<Edn, EdnError> {
        self.bump();
        let mut out = Vec::new();
        loop {
            match self.bump() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => match self.bump() {
                    Some(b'n') => out.push(b'\n'),
                    Some(b't') => out.push(b'\t'),
                    Some(b'r') => out.push(b'\r'),
                    Some(c @ (b'"' | b'\\')) => out.push(c),
                    _ => return Err(self.error("unknown escape in string")),
                },
                Some(c) => out.push(c),
            }
        }
        String::from_utf8(out)
            .map(Edn::Str)
            .map_err(|_| self.error("string is not valid UTF-8"))
    }

    fn token(&mut self) -> Result<&'a str, EdnError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| {
            !(c.is_ascii_whitespace()
                || matches!(
                    c,
                    b',' | b'{' | b'}' | b'[' | b']' | b'(' | b')' | b'"' | b';'
                ))
        }) {
            self.bump();
        }
        if start == self.pos {
            return Err(self.error("expected a value"));
        }
        std::str::from_utf8(&self.text[start..self.pos]).map_err(|_| self.error("invalid UTF-8"))
    }
}

fn atom(token: &str) -> Edn {
    match token {
        "nil" => Edn::Nil,
        "true" => Edn::Bool(true),
        "false" => Edn::Bool(false),
        _ => {
            if let Some(k) = token.strip_prefix(':') {
                Edn::Keyword(k.to_string())
            } else if let Ok(i) = token.trim_end_matches('N').parse::<i64>() {
                Edn::Int(i)
            } else if let Ok(x) = token.trim_end_matches('M').parse::<f64>() {
                Edn::Float(x)
            } else {
                Edn::Symbol(token.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_history_forms_and_reports_lines() {
        let mut r = Reader::new(
            "[{:process 0, :type :invoke, :f :cas, :value [1 2]}\n#{1}] \"a\\\"b\"\n{:x",
        );
        let (line, m) = r.next_form().unwrap().unwrap();
        assert_eq!(line, 1);
        assert_eq!(m.get("process"), Some(&Edn::Int(0)));
        assert_eq!(
            m.get("value"),
            Some(&Edn::Seq(vec![Edn::Int(1), Edn::Int(2)]))
        );
        assert_eq!(
            r.next_form().unwrap(),
            Some((2, Edn::Seq(vec![Edn::Int(1)])))
        );
        assert_eq!(r.next_form().unwrap(), Some((2, Edn::Str("a\"b".into()))));
        let err = r.next_form().unwrap_err();
        assert_eq!(err.line, 3);
    }
}

//! Just enough JSON to read cargo's `--message-format=json` lines: one value per line, read
//! into a small tree. Cargo's messages are the only JSON the runner reads, so a dozen lines of
//! parser beat a serde dependency that every learner would compile before their first test.

use std::collections::BTreeMap;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    /// Parses one JSON text; `None` if it is not valid JSON.
    pub fn parse(text: &str) -> Option<Json> {
        let mut parser = Parser {
            chars: text.chars().collect(),
            at: 0,
        };
        let value = parser.value()?;
        parser.skip_space();
        (parser.at == parser.chars.len()).then_some(value)
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.get(key),
            _ => None,
        }
    }

    /// The value at a path of keys: `json.at(&["target", "name"])`.
    pub fn at(&self, path: &[&str]) -> Option<&Json> {
        path.iter().try_fold(self, |value, key| value.get(key))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, word: &str) -> Option<()> {
        for expected in word.chars() {
            (self.next()? == expected).then_some(())?;
        }
        Some(())
    }

    fn value(&mut self) -> Option<Json> {
        self.skip_space();
        match self.peek()? {
            'n' => self.eat("null").map(|()| Json::Null),
            't' => self.eat("true").map(|()| Json::Bool(true)),
            'f' => self.eat("false").map(|()| Json::Bool(false)),
            '"' => self.string().map(Json::String),
            '[' => self.array(),
            '{' => self.object(),
            _ => self.number(),
        }
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        {
            self.at += 1;
        }
        let text: String = self.chars[start..self.at].iter().collect();
        text.parse().ok().map(Json::Number)
    }

    fn string(&mut self) -> Option<String> {
        self.eat("\"")?;
        let mut out = String::new();
        loop {
            match self.next()? {
                '"' => return Some(out),
                '\\' => match self.next()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'u' => {
                        let unit = self.hex4()?;
                        let c = if (0xD800..0xDC00).contains(&unit) {
                            // A surrogate pair: the low half follows as `\uXXXX`.
                            self.eat("\\u")?;
                            let low = self.hex4()?;
                            char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                        } else {
                            char::from_u32(unit)
                        };
                        out.push(c.unwrap_or('\u{fffd}'));
                    }
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits: String = (0..4).map(|_| self.next()).collect::<Option<_>>()?;
        u32::from_str_radix(&digits, 16).ok()
    }

    fn array(&mut self) -> Option<Json> {
        self.eat("[")?;
        let mut items = Vec::new();
        self.skip_space();
        if self.peek() == Some(']') {
            self.at += 1;
            return Some(Json::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_space();
            match self.next()? {
                ',' => {}
                ']' => return Some(Json::Array(items)),
                _ => return None,
            }
        }
    }

    fn object(&mut self) -> Option<Json> {
        self.eat("{")?;
        let mut members = BTreeMap::new();
        self.skip_space();
        if self.peek() == Some('}') {
            self.at += 1;
            return Some(Json::Object(members));
        }
        loop {
            self.skip_space();
            let key = self.string()?;
            self.skip_space();
            self.eat(":")?;
            members.insert(key, self.value()?);
            self.skip_space();
            match self.next()? {
                ',' => {}
                '}' => return Some(Json::Object(members)),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cargo_artifact_line_is_read() {
        let line = r#"{"reason":"compiler-artifact","target":{"kind":["test"],"name":"ticker","test":true},"executable":"/t/debug/deps/ticker-1a2b","fresh":false,"n":-1.5e2,"x":null}"#;
        let json = Json::parse(line).unwrap();
        assert_eq!(
            json.at(&["reason"]).and_then(Json::as_str),
            Some("compiler-artifact")
        );
        assert_eq!(
            json.at(&["target", "name"]).and_then(Json::as_str),
            Some("ticker")
        );
        assert_eq!(
            json.at(&["target", "kind"]).and_then(Json::as_array),
            Some(&[Json::String("test".into())][..])
        );
        assert_eq!(json.get("n"), Some(&Json::Number(-150.0)));
        assert_eq!(json.get("fresh"), Some(&Json::Bool(false)));
    }

    #[test]
    fn escapes_are_decoded() {
        let json =
            Json::parse(r#"{"rendered":"a\n\t\"b\" \\ \u00e9 \ud83e\udd80 \u001b[31m"}"#).unwrap();
        assert_eq!(
            json.get("rendered").and_then(Json::as_str),
            Some("a\n\t\"b\" \\ é 🦀 \u{1b}[31m")
        );
    }

    #[test]
    fn broken_json_is_none() {
        for text in ["", "{", "{\"a\":}", "[1,]", "\"open", "{} x", "nul"] {
            assert_eq!(Json::parse(text), None, "{text}");
        }
        assert_eq!(Json::parse(" [ ] "), Some(Json::Array(Vec::new())));
    }
}

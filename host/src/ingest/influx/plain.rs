//! One pass over a plain line: what agents send for numeric fields, with
//! no quote, backslash, tab, carriage return or NUL, and no leading
//! space or `#`. `influxdb-line-protocol`'s parser costs several times
//! more per line (nom combinators, and its Go-ported scanner run twice);
//! this reads the common case and answers `None` for anything else, which
//! then goes to the crate. For a line it accepts, it yields exactly what
//! the crate's parser yields (the `influx_lines` fuzz target and the
//! tests below compare them).

/// A field's value, as the crate types it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PlainValue {
    F64(f64),
    I64(i64),
    U64(u64),
    Bool(bool),
}

/// A parsed plain line; its vectors are reused from line to line.
#[derive(Debug, Default)]
pub struct PlainLine<'a> {
    pub measurement: &'a str,
    pub tags: Vec<(&'a str, &'a str)>,
    pub fields: Vec<(&'a str, PlainValue)>,
    pub timestamp: Option<i64>,
}

/// Bytes that make a line not plain.
fn unusual(b: u8) -> bool {
    matches!(b, b'"' | b'\\' | b'\t' | b'\r' | b'\0' | b'\n')
}

/// Parses `line` into `out`, or `None` when it is not plain (or is
/// malformed: the crate then says why).
pub fn parse<'a>(line: &'a str, out: &mut PlainLine<'a>) -> Option<()> {
    out.tags.clear();
    out.fields.clear();
    out.timestamp = None;
    let bytes = line.as_bytes();
    if bytes.is_empty() || matches!(bytes[0], b' ' | b'#') || bytes.iter().any(|&b| unusual(b)) {
        return None;
    }
    // Measurement: up to ',' or ' '.
    let end = line.find([',', ' '])?;
    out.measurement = &line[..end];
    if out.measurement.is_empty() {
        return None;
    }
    let mut rest = &line[end..];
    // Tags: `,key=value` pairs up to the first space.
    while let Some(tag) = rest.strip_prefix(',') {
        let (key, value, next) = key_value(tag)?;
        if value.is_empty() {
            return None;
        }
        out.tags.push((key, value));
        rest = next;
    }
    rest = rest.strip_prefix(' ')?.trim_start_matches(' ');
    // Fields: `key=value` pairs separated by ',', up to a space or the end.
    loop {
        let (key, text, next) = key_value(rest)?;
        out.fields.push((key, value(text)?));
        match next.strip_prefix(',') {
            Some(after) => rest = after,
            None => {
                rest = next;
                break;
            }
        }
    }
    if rest.is_empty() {
        return Some(());
    }
    let timestamp = rest.strip_prefix(' ')?.trim_start_matches(' ');
    if timestamp.is_empty() || !is_integer(timestamp) {
        return None;
    }
    out.timestamp = Some(timestamp.parse().ok()?);
    Some(())
}

/// `key=value` at the start of `text`: the key (no ',' or ' '), the
/// value up to the next ',' or ' ', and what follows it.
fn key_value(text: &str) -> Option<(&str, &str, &str)> {
    let eq = text.find('=')?;
    let key = &text[..eq];
    if key.is_empty() || key.contains([',', ' ']) {
        return None;
    }
    let after = &text[eq + 1..];
    let end = after.find([',', ' ']).unwrap_or(after.len());
    Some((key, &after[..end], &after[end..]))
}

/// `-?[0-9]+`.
fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A field value in the crate's grammar: `1i`, `1u`, a float
/// (`-?digits(.digits)?([eE][+-]?digits)?`) or a boolean word.
fn value(text: &str) -> Option<PlainValue> {
    if let Some(int) = text.strip_suffix('i') {
        return is_integer(int).then(|| int.parse().ok().map(PlainValue::I64))?;
    }
    if let Some(uint) = text.strip_suffix('u') {
        let digits = !uint.is_empty() && uint.bytes().all(|b| b.is_ascii_digit());
        return digits.then(|| uint.parse().ok().map(PlainValue::U64))?;
    }
    match text {
        "t" | "T" | "true" | "True" | "TRUE" => return Some(PlainValue::Bool(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Some(PlainValue::Bool(false)),
        _ => {}
    }
    is_float(text).then(|| text.parse().ok().map(PlainValue::F64))?
}

fn is_float(text: &str) -> bool {
    let body = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (integral, fraction) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(integral)
        && fraction.is_none_or(digits)
        && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)))
}

#[cfg(test)]
mod tests {
    use influxdb_line_protocol::{FieldValue, parse_lines};

    use super::*;

    /// A line as measurement, tags, fields and timestamp, owned.
    type Reading = (
        String,
        Vec<(String, String)>,
        Vec<(String, PlainValue)>,
        Option<i64>,
    );

    /// The crate's reading of a line, in this module's terms.
    fn by_crate(line: &str) -> Option<Reading> {
        let parsed = parse_lines(line).next()?.ok()?;
        let tags = parsed
            .series
            .tag_set
            .iter()
            .flatten()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let fields = parsed
            .field_set
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    FieldValue::F64(v) => PlainValue::F64(*v),
                    FieldValue::I64(v) => PlainValue::I64(*v),
                    FieldValue::U64(v) => PlainValue::U64(*v),
                    FieldValue::Boolean(v) => PlainValue::Bool(*v),
                    FieldValue::String(_) => return None,
                };
                Some((k.to_string(), v))
            })
            .collect::<Option<Vec<_>>>()?;
        Some((
            parsed.series.measurement.to_string(),
            tags,
            fields,
            parsed.timestamp,
        ))
    }

    /// Asserts that a line this module accepts reads as the crate reads it.
    pub fn assert_agrees(line: &str) -> bool {
        let mut out = PlainLine::default();
        if parse(line, &mut out).is_none() {
            return false;
        }
        let mine = (
            out.measurement.to_owned(),
            out.tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>(),
            out.fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect::<Vec<_>>(),
            out.timestamp,
        );
        assert_eq!(Some(mine), by_crate(line), "{line:?}");
        true
    }

    #[test]
    fn plain_lines_read_as_the_crate_reads_them() {
        for line in [
            "cpu,host=a,region=eu usage_idle=97.5,usage_user=2i 1700000000000000000",
            "cpu usage=1",
            "cpu  usage=-1.5e3,n=3u,ok=t,bad=FALSE   1",
            "m,k=v=w x=1E+5,y=0.25",
            "m x=-0i",
            "m x=1 -5",
            "µ,ключ=значение поле=1",
        ] {
            assert!(assert_agrees(line), "not read as plain: {line:?}");
        }
    }

    #[test]
    fn anything_unusual_goes_to_the_crate() {
        for line in [
            "",
            " cpu x=1",
            "# comment",
            "cpu x=\"s\"",
            "cpu\\ a x=1",
            "cpu x=1.",
            "cpu x=.5",
            "cpu x=+5",
            "cpu x=1,",
            "cpu,a x=1",
            "cpu,a= x=1",
            "cpu x=99999999999999999999i",
            "cpu x=1 1 2",
            "cpu x=1 ",
            "cpu x=1\r",
            "cpu x=1i2",
            "cpu",
            ",a=b x=1",
            "cpu x",
        ] {
            let mut out = PlainLine::default();
            assert!(parse(line, &mut out).is_none(), "read as plain: {line:?}");
        }
    }
}

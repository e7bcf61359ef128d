//! The trend pipeline's reading of clean events, in compiled code (see `streams/native.py`).
//!
//! A pre-check, never the judge, as `schemas/fastpath.py`: a message is read here only if it is in the
//! plain form the portals' feeds write (no escapes in strings, integers as integers, times to the
//! millisecond with an offset) and passes every rule the spec derived from the pydantic models states.
//! Whatever is not read here is left to Python, whose answer -- the event or the dead letter -- stands.
//! An accepted message becomes its `events` row, encoded as ClickHouse's RowBinary, so neither the row
//! nor its columns are ever Python objects.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyList, PySet, PyString, PyTuple};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A fast hash for the short texts looked up per message (codes, cells): no untrusted-input flooding to
/// guard against here -- a set is per batch, and its keys are checked codes.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Fx {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, mut b: &[u8]) {
        while b.len() >= 8 {
            self.add(u64::from_le_bytes(b[..8].try_into().unwrap()));
            b = &b[8..];
        }
        if b.len() >= 4 {
            self.add(u32::from_le_bytes(b[..4].try_into().unwrap()) as u64);
            b = &b[4..];
        }
        for &c in b {
            self.add(c as u64);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxSet<T> = HashSet<T, BuildHasherDefault<Fx>>;
type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

const KST_MS: i64 = 9 * 3_600_000;
const DAY_MS: i64 = 86_400_000;
const MAX_DATE_DAYS: i64 = 65_535; // ClickHouse's Date: 1970-01-01 .. 2149-06-06

/// The `events` table's columns, in `streams.processing.EVENT_COLUMNS` order, and their types (migration
/// 0001; `tests/test_native.py` checks the ClickHouse types against the table's).
const COLUMNS: [(&str, Col); 24] = [
    ("event_id", Col::Fixed(32)),
    ("event_type", Col::Lc),
    ("schema_version", Col::U16),
    ("occurred_at", Col::Ms),
    ("source", Col::Lc),
    ("entity_id", Col::Str),
    ("vacancy_id", Col::Str),
    ("employer_id", Col::Str),
    ("region", Col::Lc),
    ("industry", Col::Lc),
    ("occupation", Col::Lc),
    ("size_band", Col::Lc),
    ("age_band", Col::Lc),
    ("sex", Col::Lc),
    ("subtype", Col::Lc),
    ("review_rule", Col::Lc),
    ("title_key", Col::Str),
    ("openings", Col::U16),
    ("deadline", Col::NullableDate),
    ("message", Col::Str),
    ("topic", Col::Lc),
    ("partition", Col::U16),
    ("offset", Col::U64),
    ("emitted_at", Col::Ms),
];

#[derive(Clone, Copy)]
enum Col {
    Fixed(usize),
    Str,
    Lc, // LowCardinality(String): a String in RowBinary
    U16,
    U64,
    Ms, // DateTime64(3): Int64 milliseconds
    NullableDate,
}

/// Why a message is not read here: it is left to Python; or its free text must first be screened by the
/// model's own rules, in Python, which needs the GIL (it is read again, with it).
#[derive(Clone, Copy)]
enum Stop {
    Leave,
    Screen,
}
use crate::Stop::Leave;
type R<T> = Result<T, Stop>;

// --- the spec ------------------------------------------------------------------------------------------

enum Kind {
    Id { prefix: Vec<u8>, hex: usize },
    Code(FxSet<Vec<u8>>),
    Int { ge: Option<i64>, le: Option<i64> },
    Bool,
    Date,
    Text { min: usize, max: usize },
    Codes { codes: FxSet<Vec<u8>>, max: Option<usize> },
}

struct Field {
    name: Vec<u8>,
    kind: Kind,
    optional: bool, // null allowed
    required: bool, // no default
    default_int: Option<i64>,
}

struct Review {
    title: usize,
    wage_type: usize,
    wage_amount: usize,
    work_hours: usize,
    deadline: usize,
}

struct RowSpec {
    entity: usize,
    vacancy_id: Option<usize>,
    employer_id: Option<usize>,
    region: usize,
    industry: Option<usize>,
    occupation: usize,
    size_band: Option<usize>,
    age_band: Option<usize>,
    sex: Option<usize>,
    subtype: Option<usize>,
    openings: Option<usize>,
    deadline: Option<usize>,
    review: Option<Review>,
}

struct EventType {
    name: Vec<u8>,
    versions: Vec<i64>,
    fields: Vec<Field>,
    any_of: Vec<usize>,
    row: RowSpec,
    vacancy_event: bool,
}

#[derive(Clone, Copy)]
enum V<'a> {
    Absent,
    Null,
    Str(&'a str),
    Int(i64),
    Bool,
    Date(i64),
    List,
}

// --- JSON, the plain form only -------------------------------------------------------------------------

struct Cur<'a> {
    b: &'a [u8],
    s: &'a str,
    i: usize,
}

impl<'a> Cur<'a> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> R<()> {
        self.ws();
        if self.i < self.b.len() && self.b[self.i] == c {
            self.i += 1;
            Ok(())
        } else {
            Err(Leave)
        }
    }
    fn peek(&mut self) -> R<u8> {
        self.ws();
        self.b.get(self.i).copied().ok_or(Leave)
    }
    /// A string without escapes (the text between the quotes).
    fn string(&mut self) -> R<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        // Eight bytes at a time while none is a quote, a backslash or a control character.
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        while self.i + 8 <= self.b.len() {
            let v = u64::from_le_bytes(self.b[self.i..self.i + 8].try_into().unwrap());
            let quote = v ^ (ONES * b'"' as u64);
            let backslash = v ^ (ONES * b'\\' as u64);
            let special = (quote.wrapping_sub(ONES) & !quote)
                | (backslash.wrapping_sub(ONES) & !backslash)
                | (v.wrapping_sub(ONES * 0x20) & !v);
            if special & HIGH != 0 {
                break;
            }
            self.i += 8;
        }
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'"' => {
                    let s = &self.s[start..self.i];
                    self.i += 1;
                    return Ok(s);
                }
                b'\\' | 0..=0x1f => return Err(Leave),
                _ => self.i += 1,
            }
        }
        Err(Leave)
    }
    /// An integer as JSON writes one (no fraction or exponent), within i64 by a wide margin.
    fn int(&mut self) -> R<i64> {
        self.ws();
        let start = self.i;
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let digits = self.i;
        while self.i < self.b.len() && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        let n = self.i - digits;
        // No leading zeros, and no "-0" (whose reading by pydantic's parser is not worth the doubt).
        if n == 0 || n > 15 || (self.b[digits] == b'0' && (n > 1 || digits > start)) {
            return Err(Leave);
        }
        if matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E')) {
            return Err(Leave);
        }
        self.s[start..self.i].parse::<i64>().map_err(|_| Leave)
    }
    fn word(&mut self, w: &[u8]) -> R<()> {
        self.ws();
        if self.b[self.i..].starts_with(w) {
            self.i += w.len();
            Ok(())
        } else {
            Err(Leave)
        }
    }
    /// After a member of an object or an array: true if another follows (its ',' is consumed), false at
    /// the `end` (consumed).
    fn more(&mut self, end: u8) -> R<bool> {
        match self.peek()? {
            b',' => {
                self.i += 1;
                Ok(true)
            }
            c if c == end => {
                self.i += 1;
                Ok(false)
            }
            _ => Err(Leave),
        }
    }

    /// Skip any value (the payload, read once the event type is known).
    fn skip(&mut self, depth: u32) -> R<()> {
        if depth > 8 {
            return Err(Leave);
        }
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' => {
                self.i += 1;
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.string()?;
                    self.eat(b':')?;
                    self.skip(depth + 1)?;
                    if !self.more(b'}')? {
                        return Ok(());
                    }
                }
            }
            b'[' => {
                self.i += 1;
                if self.peek()? == b']' {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.skip(depth + 1)?;
                    if !self.more(b']')? {
                        return Ok(());
                    }
                }
            }
            b't' => self.word(b"true"),
            b'f' => self.word(b"false"),
            b'n' => self.word(b"null"),
            _ => self.int().map(|_| ()),
        }
    }
}

// --- times and dates -----------------------------------------------------------------------------------

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn year_of_days(z: i64) -> i64 {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + if m <= 2 { 1 } else { 0 }
}

fn digits(b: &[u8]) -> R<i64> {
    let mut n = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return Err(Leave);
        }
        n = n * 10 + (c - b'0') as i64;
    }
    Ok(n)
}

/// "YYYY-MM-DD", a real day: days since 1970-01-01.
fn date(s: &[u8]) -> R<i64> {
    if s.len() != 10 || s[4] != b'-' || s[7] != b'-' {
        return Err(Leave);
    }
    let (y, m, d) = (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if y < 1 || !(1..=12).contains(&m) || d < 1 || d > dim[(m - 1) as usize] {
        return Err(Leave);
    }
    Ok(days_from_civil(y, m, d))
}

/// RFC 3339 with at most milliseconds and a Z or numeric offset (at most 18 h): epoch milliseconds. A
/// time with more digits is left to Python, which rounds it to the millisecond as it always did.
fn datetime_ms(s: &[u8]) -> R<i64> {
    if s.len() < 20 || s[10] != b'T' || s[13] != b':' || s[16] != b':' {
        return Err(Leave);
    }
    let days = date(&s[0..10])?;
    let (h, mi, sec) = (digits(&s[11..13])?, digits(&s[14..16])?, digits(&s[17..19])?);
    if h > 23 || mi > 59 || sec > 59 {
        return Err(Leave);
    }
    let mut i = 19;
    let mut frac = 0i64;
    if s[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 3 {
            return Err(Leave);
        }
        frac = digits(&s[start..i])? * [100, 10, 1][n - 1];
    }
    let offset_ms = match &s[i..] {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] => {
            let (oh, om) = (digits(&[*oh1, *oh2])?, digits(&[*om1, *om2])?);
            if oh > 18 || om > 59 || (oh == 18 && om > 0) || (*sign == b'-' && oh == 0 && om == 0) {
                return Err(Leave);
            }
            let v = (oh * 60 + om) * 60_000;
            if *sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return Err(Leave),
    };
    Ok(days * DAY_MS + h * 3_600_000 + mi * 60_000 + sec * 1000 + frac - offset_ms)
}

// --- the classifier ------------------------------------------------------------------------------------

#[pyclass(frozen, module = "lmis_native")]
struct Classifier {
    types: Vec<EventType>,
    event_id_hex: usize,
    sources: FxSet<Vec<u8>>,
    occurred_ge_ms: i64,
    occurred_lt_ms: i64,
    prohibited: Vec<String>,
    wage_hours: FxMap<Vec<u8>, f64>,
    minimum_wage: FxMap<i64, f64>,
    find_pii: Py<PyAny>,
}

fn codes_of(obj: &Bound<'_, PyAny>) -> PyResult<FxSet<Vec<u8>>> {
    obj.try_iter()?.map(|c| Ok(c?.extract::<String>()?.into_bytes())).collect()
}

fn get<'py>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<Bound<'py, PyAny>> {
    d.get_item(key)?.ok_or_else(|| PyValueError::new_err(format!("spec: missing {key}")))
}

fn index_of(d: &Bound<'_, PyDict>, key: &str) -> PyResult<Option<usize>> {
    get(d, key)?.extract()
}

impl Classifier {
    fn parse_type(t: &Bound<'_, PyDict>) -> PyResult<EventType> {
        let mut fields = Vec::new();
        for f in get(t, "fields")?.try_iter()? {
            let f = f?;
            let f = f.cast::<PyDict>()?;
            let kind: String = get(f, "kind")?.extract()?;
            let a = get(f, "a")?;
            let b = get(f, "b")?;
            let kind = match kind.as_str() {
                "id" => Kind::Id { prefix: a.extract::<String>()?.into_bytes(), hex: b.extract()? },
                "code" => Kind::Code(codes_of(&a)?),
                "int" => Kind::Int { ge: a.extract()?, le: b.extract()? },
                "bool" => Kind::Bool,
                "date" => Kind::Date,
                "text" => Kind::Text { min: a.extract()?, max: b.extract()? },
                "codes" => Kind::Codes { codes: codes_of(&a)?, max: b.extract()? },
                other => return Err(PyValueError::new_err(format!("spec: unknown kind {other}"))),
            };
            fields.push(Field {
                name: get(f, "name")?.extract::<String>()?.into_bytes(),
                kind,
                optional: get(f, "optional")?.extract()?,
                required: get(f, "required")?.extract()?,
                default_int: get(f, "default_int")?.extract()?,
            });
        }
        let row = get(t, "row")?;
        let row = row.cast::<PyDict>()?;
        let review = match get(row, "review")?.extract::<Option<Bound<'_, PyDict>>>()? {
            None => None,
            Some(r) => Some(Review {
                title: get(&r, "title")?.extract()?,
                wage_type: get(&r, "wage_type")?.extract()?,
                wage_amount: get(&r, "wage_amount")?.extract()?,
                work_hours: get(&r, "work_hours_per_week")?.extract()?,
                deadline: get(&r, "deadline")?.extract()?,
            }),
        };
        let n = fields.len();
        let row = RowSpec {
            entity: get(row, "entity_id")?.extract()?,
            vacancy_id: index_of(row, "vacancy_id")?,
            employer_id: index_of(row, "employer_id")?,
            region: get(row, "region")?.extract()?,
            industry: index_of(row, "industry")?,
            occupation: get(row, "occupation")?.extract()?,
            size_band: index_of(row, "size_band")?,
            age_band: index_of(row, "age_band")?,
            sex: index_of(row, "sex")?,
            subtype: index_of(row, "subtype")?,
            openings: index_of(row, "openings")?,
            deadline: index_of(row, "deadline")?,
            review,
        };
        let any_of: Vec<usize> = get(t, "any_of")?.extract()?;
        let mut all = vec![row.entity, row.region, row.occupation];
        all.extend(any_of.iter().copied());
        for i in [
            row.vacancy_id,
            row.employer_id,
            row.industry,
            row.size_band,
            row.age_band,
            row.sex,
            row.subtype,
            row.openings,
            row.deadline,
        ]
        .into_iter()
        .flatten()
        {
            all.push(i);
        }
        if all.iter().any(|&i| i >= n) {
            return Err(PyValueError::new_err("spec: a field index out of range"));
        }
        Ok(EventType {
            name: get(t, "event_type")?.extract::<String>()?.into_bytes(),
            versions: get(t, "versions")?.extract()?,
            fields,
            any_of,
            row,
            vacancy_event: get(t, "vacancy_event")?.extract()?,
        })
    }

    fn text<'a>(&self, py: Option<Python<'_>>, s: &'a str, min: usize, max: usize) -> R<&'a str> {
        // Only ASCII, Hangul syllables and the middle dot: Python's and Rust's ideas of whitespace, case and
        // digits agree on these, and the only whitespace among them is the space.
        let mut n = 0;
        let mut screen = false;
        for c in s.chars() {
            n += 1;
            match c {
                ' '..='~' => screen |= c.is_ascii_digit() || c == '@',
                '\u{AC00}'..='\u{D7A3}' | '\u{00B7}' => {}
                _ => return Err(Leave),
            }
        }
        if n < min || n > max || s.starts_with(' ') || s.ends_with(' ') {
            return Err(Leave);
        }
        if screen {
            // Digits or an '@': the model's own screening decides (schemas.pii.find_pii).
            let py = py.ok_or(Stop::Screen)?;
            let found = self.find_pii.bind(py).call1((s,)).map_err(|_| Leave)?;
            if !found.is_none() {
                return Err(Leave);
            }
        }
        Ok(s)
    }

    fn value<'a>(&self, py: Option<Python<'_>>, cur: &mut Cur<'a>, f: &Field) -> R<V<'a>> {
        if cur.peek()? == b'n' {
            cur.word(b"null")?;
            return if f.optional { Ok(V::Null) } else { Err(Leave) };
        }
        Ok(match &f.kind {
            Kind::Id { prefix, hex } => {
                let s = cur.string()?;
                let b = s.as_bytes();
                if b.len() != prefix.len() + hex
                    || !b.starts_with(prefix)
                    || !b[prefix.len()..].iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
                {
                    return Err(Leave);
                }
                V::Str(s)
            }
            Kind::Code(codes) => {
                let s = cur.string()?;
                if !codes.contains(s.as_bytes()) {
                    return Err(Leave);
                }
                V::Str(s)
            }
            Kind::Int { ge, le } => {
                let n = cur.int()?;
                if ge.is_some_and(|g| n < g) || le.is_some_and(|l| n > l) {
                    return Err(Leave);
                }
                V::Int(n)
            }
            Kind::Bool => {
                match cur.peek()? {
                    b't' => cur.word(b"true")?,
                    _ => cur.word(b"false")?,
                }
                V::Bool
            }
            Kind::Date => V::Date(date(cur.string()?.as_bytes())?),
            Kind::Text { min, max } => V::Str(self.text(py, cur.string()?, *min, *max)?),
            Kind::Codes { codes, max } => {
                cur.eat(b'[')?;
                let mut n = 0;
                if cur.peek()? == b']' {
                    cur.i += 1;
                } else {
                    loop {
                        if !codes.contains(cur.string()?.as_bytes()) {
                            return Err(Leave);
                        }
                        n += 1;
                        if !cur.more(b']')? {
                            break;
                        }
                    }
                }
                if max.is_some_and(|m| n > m) {
                    return Err(Leave);
                }
                V::List
            }
        })
    }

    /// A payload object, by its event type's fields: their values in `vals`.
    fn payload<'a>(&self, py: Option<Python<'_>>, cur: &mut Cur<'a>, t: &EventType, vals: &mut Vec<V<'a>>) -> R<()> {
        vals.clear();
        vals.resize(t.fields.len(), V::Absent);
        cur.eat(b'{')?;
        if cur.peek()? == b'}' {
            cur.i += 1;
        } else {
            let mut next = 0; // the fields usually come in the model's order: that one is tried first
            loop {
                let key = cur.string()?.as_bytes();
                cur.eat(b':')?;
                let fi = match t.fields.get(next) {
                    Some(f) if f.name == key => next,
                    _ => t.fields.iter().position(|f| f.name == key).ok_or(Leave)?,
                };
                if !matches!(vals[fi], V::Absent) {
                    return Err(Leave);
                }
                vals[fi] = self.value(py, cur, &t.fields[fi])?;
                next = fi + 1;
                if !cur.more(b'}')? {
                    break;
                }
            }
        }
        for (f, v) in t.fields.iter().zip(vals.iter()) {
            if f.required && matches!(v, V::Absent) {
                return Err(Leave);
            }
        }
        if !t.any_of.is_empty() && t.any_of.iter().all(|&i| matches!(vals[i], V::Absent | V::Null)) {
            return Err(Leave);
        }
        Ok(())
    }

    /// One message read: its type's index, occurred_at in epoch milliseconds, schema version, event id and
    /// source, with the payload's values in `vals` -- or Leave.
    fn read<'a>(
        &self,
        py: Option<Python<'_>>,
        raw: &'a [u8],
        vals: &mut Vec<V<'a>>,
    ) -> R<(usize, i64, i64, &'a str, &'a str)> {
        let s = std::str::from_utf8(raw).map_err(|_| Leave)?;
        let mut cur = Cur { b: raw, s, i: 0 };
        // The envelope: event_id, event_type, schema_version, occurred_at, source, payload -- each once.
        let mut env: [Option<usize>; 6] = [None; 6];
        let mut event_id = "";
        let mut version = 0i64;
        let mut occurred_at = "";
        let mut source = "";
        let mut ti: Option<usize> = None;
        let mut payload_read = false;
        cur.eat(b'{')?;
        loop {
            let key = cur.string()?;
            cur.eat(b':')?;
            let k = match key {
                "event_id" => 0,
                "event_type" => 1,
                "schema_version" => 2,
                "occurred_at" => 3,
                "source" => 4,
                "payload" => 5,
                _ => return Err(Leave),
            };
            if env[k].is_some() {
                return Err(Leave);
            }
            env[k] = Some(cur.i);
            match k {
                0 => event_id = cur.string()?,
                1 => {
                    let event_type = cur.string()?;
                    ti = Some(self.types.iter().position(|t| t.name == event_type.as_bytes()).ok_or(Leave)?);
                }
                2 => version = cur.int()?,
                3 => occurred_at = cur.string()?,
                4 => source = cur.string()?,
                _ => match ti {
                    // The feeds write the type first: the payload is read by its fields at once.
                    Some(t) => {
                        self.payload(py, &mut cur, &self.types[t], vals)?;
                        payload_read = true;
                    }
                    None => {
                        if cur.peek()? != b'{' {
                            return Err(Leave);
                        }
                        cur.skip(0)?
                    }
                },
            }
            if !cur.more(b'}')? {
                break;
            }
        }
        cur.ws();
        if cur.i != raw.len() || env.iter().any(|e| e.is_none()) {
            return Err(Leave);
        }
        let ti = ti.ok_or(Leave)?;
        let t = &self.types[ti];
        if !payload_read {
            cur.i = env[5].unwrap();
            self.payload(py, &mut cur, t, vals)?;
        }
        if !t.versions.contains(&version) {
            return Err(Leave);
        }
        let id = event_id.as_bytes();
        if id.len() != self.event_id_hex || !id.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Leave);
        }
        if !self.sources.contains(source.as_bytes()) {
            return Err(Leave);
        }
        let occurred = datetime_ms(occurred_at.as_bytes())?;
        if occurred < self.occurred_ge_ms || occurred >= self.occurred_lt_ms {
            return Err(Leave);
        }
        Ok((ti, occurred, version, event_id, source))
    }

    /// One message's row appended to `out`, and its measure cell and vacancy -- or why it was not read.
    #[allow(clippy::too_many_arguments)]
    fn row<'a>(
        &self,
        py: Option<Python<'_>>,
        raw: &'a [u8],
        ts: i64,
        offset: i64,
        run: &Run<'_>,
        vals: &mut Vec<V<'a>>,
        out: &mut Vec<u8>,
    ) -> R<(Cell<'a>, Option<&'a str>)> {
        let (ti, occurred, version, event_id, source) = self.read(py, raw, vals)?;
        if occurred > ts + run.future_tolerance_ms || occurred < ts - run.allowed_lateness_ms {
            return Err(Leave); // a dead letter: Python words it
        }
        let t = &self.types[ti];
        let r = &t.row;
        let (rule, key) = self.review(t, vals, occurred)?;
        let entity = text_of(vals, Some(r.entity))?;
        let vacancy_id = text_of(vals, r.vacancy_id)?;
        let employer_id = text_of(vals, r.employer_id)?;
        let region = text_of(vals, Some(r.region))?;
        let industry = text_of(vals, r.industry)?;
        let occupation = text_of(vals, Some(r.occupation))?;
        let size_band = text_of(vals, r.size_band)?;
        let age_band = text_of(vals, r.age_band)?;
        let sex = text_of(vals, r.sex)?;
        let subtype = match r.subtype {
            None => "",
            Some(i) => match vals[i] {
                V::Str(s) => s,
                _ => return Err(Leave),
            },
        };
        let openings = match r.openings.map(|i| (vals[i], t.fields[i].default_int)) {
            None => 0,
            Some((V::Int(v), _)) => v,
            Some((V::Absent, Some(d))) => d,
            Some((V::Absent | V::Null, None)) => 0,
            _ => return Err(Leave),
        };
        let deadline = match r.deadline.map(|i| vals[i]) {
            None | Some(V::Absent | V::Null) => None,
            Some(V::Date(d)) if (0..=MAX_DATE_DAYS).contains(&d) => Some(d as u16),
            _ => return Err(Leave),
        };
        if !(0..=u16::MAX as i64).contains(&openings) || !(0..=u16::MAX as i64).contains(&version) {
            return Err(Leave);
        }
        out.extend_from_slice(event_id.as_bytes());
        put_str(out, &t.name);
        out.extend_from_slice(&(version as u16).to_le_bytes());
        out.extend_from_slice(&occurred.to_le_bytes());
        for s in [
            source,
            entity,
            vacancy_id,
            employer_id,
            region,
            industry,
            occupation,
            size_band,
            age_band,
            sex,
            subtype,
            rule,
            key.as_str(),
        ] {
            put_str(out, s.as_bytes());
        }
        out.extend_from_slice(&(openings as u16).to_le_bytes());
        match deadline {
            None => out.push(1),
            Some(d) => {
                out.push(0);
                out.extend_from_slice(&d.to_le_bytes());
            }
        }
        put_str(out, raw);
        put_str(out, run.topic.as_bytes());
        out.extend_from_slice(&run.partition.to_le_bytes());
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        out.extend_from_slice(&ts.to_le_bytes());
        let day = (occurred + KST_MS).div_euclid(DAY_MS);
        let cell = (day, region, industry, occupation, age_band, sex, size_band);
        Ok((cell, if t.vacancy_event { Some(vacancy_id) } else { None }))
    }

    /// One message into `acc`: its row, or its index among those left to Python or to screen.
    #[allow(clippy::too_many_arguments)]
    fn one<'a>(
        &self,
        py: Option<Python<'_>>,
        idx: usize,
        raw: &'a [u8],
        ts: i64,
        offset: i64,
        run: &Run<'_>,
        acc: &mut Acc<'a>,
    ) {
        let start = acc.out.len();
        match self.row(py, raw, ts, offset, run, &mut acc.vals, &mut acc.out) {
            Ok((cell, vacancy)) => {
                acc.n += 1;
                acc.days.insert(cell.0);
                if let Some(c) = acc.cells.as_mut() {
                    c.insert(cell);
                    if c.len() > run.max_cells {
                        acc.cells = None;
                    }
                }
                if let Some(v) = vacancy {
                    acc.vacancies.insert(v);
                }
            }
            Err(stop) => {
                acc.out.truncate(start);
                match stop {
                    Stop::Leave => acc.left.push(idx),
                    Stop::Screen => acc.screen.push(idx),
                }
            }
        }
    }

    fn review(&self, t: &EventType, vals: &[V<'_>], occurred: i64) -> R<(&'static str, String)> {
        let Some(r) = &t.row.review else { return Ok(("", String::new())) };
        let V::Str(title) = vals[r.title] else { return Err(Leave) };
        // title_key: lower case, runs of spaces as one (ASCII and Hangul only, checked when read)
        let mut key = String::with_capacity(title.len());
        let mut space = false;
        for c in title.chars() {
            if c == ' ' {
                if !space {
                    key.push(' ');
                }
                space = true;
            } else {
                key.push(c.to_ascii_lowercase());
                space = false;
            }
        }
        // Prohibited terms on the title without spaces, lower case (streams.processing.compact_title; the
        // spec's terms are compacted alike).
        let compact: String = key.chars().filter(|c| *c != ' ').collect();
        if self.prohibited.iter().any(|p| compact.contains(p.as_str())) {
            return Ok(("prohibited_job", key));
        }
        let (V::Str(wage_type), V::Int(amount), V::Int(_), V::Date(_)) =
            (vals[r.wage_type], vals[r.wage_amount], vals[r.work_hours], vals[r.deadline])
        else {
            return Ok(("missing_fields", key));
        };
        let hours = *self.wage_hours.get(wage_type.as_bytes()).ok_or(Leave)?;
        let year = year_of_days((occurred + KST_MS).div_euclid(DAY_MS));
        let minimum = *self.minimum_wage.get(&year).ok_or(Leave)?;
        // As Python: an int divided by an int is the correctly rounded double, compared exactly.
        if (amount as f64) / hours < minimum {
            return Ok(("below_min_wage", key));
        }
        Ok(("", key))
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    let mut buf = [0u8; 10];
    out.extend_from_slice(leb128(s.len() as u64, &mut buf));
    out.extend_from_slice(s);
}

/// A length as ClickHouse writes it (unsigned LEB128), in `buf`.
fn leb128(mut n: u64, buf: &mut [u8; 10]) -> &[u8] {
    let mut len = 0;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf[len] = byte;
            return &buf[..=len];
        }
        buf[len] = byte | 0x80;
        len += 1;
    }
}

fn text_of<'a>(vals: &[V<'a>], i: Option<usize>) -> R<&'a str> {
    match i.map(|i| vals[i]) {
        None | Some(V::Absent | V::Null) => Ok(""),
        Some(V::Str(s)) => Ok(s),
        _ => Err(Leave),
    }
}

/// A run read: its rows (RowBinary), how many, the indexes left to Python, its days, cells and vacancies.
type RunResult<'py> =
    (Bound<'py, PyBytes>, usize, Vec<usize>, Bound<'py, PySet>, Option<Bound<'py, PySet>>, Bound<'py, PySet>);

/// What a run's messages share.
struct Run<'r> {
    topic: &'r str,
    partition: u16,
    future_tolerance_ms: i64,
    allowed_lateness_ms: i64,
    max_cells: usize,
}

/// A run's outcome as it is read.
struct Acc<'a> {
    out: Vec<u8>,
    n: usize,
    left: Vec<usize>,
    screen: Vec<usize>,
    days: FxSet<i64>,
    cells: Option<FxSet<Cell<'a>>>,
    vacancies: FxSet<&'a str>,
    vals: Vec<V<'a>>,
}

impl Acc<'_> {
    fn new(size: usize) -> Self {
        Acc {
            out: Vec::with_capacity(size),
            n: 0,
            left: Vec::new(),
            screen: Vec::new(),
            days: FxSet::default(),
            cells: Some(FxSet::default()),
            vacancies: FxSet::default(),
            vals: Vec::with_capacity(16),
        }
    }
}

type Cell<'a> = (i64, &'a str, &'a str, &'a str, &'a str, &'a str, &'a str);

#[pymethods]
impl Classifier {
    #[new]
    fn new(spec: &Bound<'_, PyDict>, find_pii: Py<PyAny>) -> PyResult<Self> {
        let columns: Vec<String> = get(spec, "columns")?.extract()?;
        if columns.iter().map(String::as_str).ne(COLUMNS.iter().map(|c| c.0)) {
            return Err(PyValueError::new_err("spec: the events columns differ from lmis_native's"));
        }
        let mut types = Vec::new();
        for t in get(spec, "types")?.try_iter()? {
            types.push(Self::parse_type(t?.cast::<PyDict>()?)?);
        }
        Ok(Classifier {
            types,
            event_id_hex: get(spec, "event_id_hex")?.extract()?,
            sources: codes_of(&get(spec, "sources")?)?,
            occurred_ge_ms: get(spec, "occurred_ge_ms")?.extract()?,
            occurred_lt_ms: get(spec, "occurred_lt_ms")?.extract()?,
            prohibited: get(spec, "prohibited")?.extract()?,
            wage_hours: get(spec, "wage_hours")?
                .extract::<HashMap<String, f64>>()?
                .into_iter()
                .map(|(k, v)| (k.into_bytes(), v))
                .collect(),
            minimum_wage: get(spec, "minimum_wage")?.extract::<HashMap<i64, f64>>()?.into_iter().collect(),
            find_pii,
        })
    }

    /// Messages of one topic-partition (objects with ``value``, ``timestamp`` and ``offset``): the
    /// RowBinary rows of those read here, how many, the indexes of those left to Python (in order), and
    /// what the rollup needs of the rows: their Asia/Seoul day numbers, their measure cells (None past
    /// ``max_cells``) and the vacancies of vacancy events. The messages are read without the GIL (the
    /// worker's other threads run meanwhile); only free text with digits or an '@' is read again with it,
    /// to be screened by Python's rules.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (records, topic, partition, future_tolerance_ms, allowed_lateness_ms, max_cells))]
    fn classify_run<'py>(
        &self,
        py: Python<'py>,
        records: &Bound<'py, PyList>,
        topic: &str,
        partition: u16,
        future_tolerance_ms: i64,
        allowed_lateness_ms: i64,
        max_cells: usize,
    ) -> PyResult<RunResult<'py>> {
        // The messages' bytes are borrowed for the whole call (held here: bytes never change), and so are
        // the texts of the rows' cells and vacancies.
        let mut held: Vec<(Bound<'py, PyAny>, i64, i64)> = Vec::with_capacity(records.len());
        for rec in records.iter() {
            let value = rec.getattr(intern!(py, "value"))?;
            let ts: i64 = rec.getattr(intern!(py, "timestamp"))?.extract()?;
            let offset: i64 = rec.getattr(intern!(py, "offset"))?.extract()?;
            held.push((value, ts, offset));
        }
        let inputs: Vec<Option<(&[u8], i64, i64)>> = held
            .iter()
            .map(|(value, ts, offset)| value.cast::<PyBytes>().ok().map(|b| (b.as_bytes(), *ts, *offset)))
            .collect();
        let size: usize = inputs.iter().flatten().map(|(raw, _, _)| raw.len() + 200).sum();
        let run = Run { topic, partition, future_tolerance_ms, allowed_lateness_ms, max_cells };
        let mut acc = py.detach(|| {
            let mut acc = Acc::new(size);
            for (idx, input) in inputs.iter().enumerate() {
                match input {
                    Some((raw, ts, offset)) => self.one(None, idx, raw, *ts, *offset, &run, &mut acc),
                    None => acc.left.push(idx),
                }
            }
            acc
        });
        for idx in std::mem::take(&mut acc.screen) {
            let (raw, ts, offset) = inputs[idx].expect("only messages of bytes are screened");
            self.one(Some(py), idx, raw, ts, offset, &run, &mut acc);
        }
        acc.left.sort_unstable();
        let days_set = PySet::new(py, acc.days.iter())?;
        let cells_set = match acc.cells {
            None => None,
            Some(c) => {
                let set = PySet::empty(py)?;
                for (d, a, b, c2, e, f, g) in c {
                    set.add(PyTuple::new(
                        py,
                        [
                            d.into_pyobject(py)?.into_any(),
                            PyString::new(py, a).into_any(),
                            PyString::new(py, b).into_any(),
                            PyString::new(py, c2).into_any(),
                            PyString::new(py, e).into_any(),
                            PyString::new(py, f).into_any(),
                            PyString::new(py, g).into_any(),
                        ],
                    )?)?;
                }
                Some(set)
            }
        };
        let vac_set = PySet::new(py, acc.vacancies.iter().copied())?;
        Ok((PyBytes::new(py, &acc.out), acc.n, acc.left, days_set, cells_set, vac_set))
    }

    /// Rows given as tuples (``EVENT_COLUMNS``; as ``streams.processing.to_row`` builds them) in RowBinary.
    fn encode_rows<'py>(&self, py: Python<'py>, rows: &Bound<'py, PyList>) -> PyResult<Bound<'py, PyBytes>> {
        encode_rows(py, rows)
    }
}

/// Rows given as tuples (``EVENT_COLUMNS``) in RowBinary.
#[pyfunction]
fn encode_rows<'py>(py: Python<'py>, rows: &Bound<'py, PyList>) -> PyResult<Bound<'py, PyBytes>> {
    let mut out: Vec<u8> = Vec::with_capacity(rows.len() * 600);
    let ordinal = intern!(py, "toordinal");
    for row in rows.iter() {
        let row = row.cast::<PyTuple>()?;
        if row.len() != COLUMNS.len() {
            return Err(PyValueError::new_err(format!(
                "an events row has {} values, not {}",
                row.len(),
                COLUMNS.len()
            )));
        }
        for (value, (name, col)) in row.iter().zip(COLUMNS.iter()) {
            let bad = |what: &str| PyTypeError::new_err(format!("events.{name}: {what}: {value:?}"));
            match col {
                Col::Fixed(n) => {
                    let s: String = value.extract().map_err(|_| bad("not text"))?;
                    if s.len() != *n {
                        return Err(bad("not of its fixed length"));
                    }
                    out.extend_from_slice(s.as_bytes());
                }
                Col::Str | Col::Lc => {
                    if let Ok(b) = value.cast::<PyBytes>() {
                        put_str(&mut out, b.as_bytes());
                    } else {
                        let s = value.cast::<PyString>().map_err(|_| bad("not text"))?;
                        put_str(&mut out, s.to_str()?.as_bytes());
                    }
                }
                Col::U16 => {
                    let v: u16 = value.extract().map_err(|_| bad("not a UInt16"))?;
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Col::U64 => {
                    let v: u64 = value.extract().map_err(|_| bad("not a UInt64"))?;
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Col::Ms => {
                    let v: i64 = value.extract().map_err(|_| bad("not milliseconds"))?;
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Col::NullableDate => {
                    if value.is_none() {
                        out.push(1);
                    } else {
                        let days =
                            value.call_method0(ordinal).map_err(|_| bad("not a date"))?.extract::<i64>()? - 719_163;
                        if !(0..=MAX_DATE_DAYS).contains(&days) {
                            return Err(bad("outside ClickHouse's Date"));
                        }
                        out.push(0);
                        out.extend_from_slice(&(days as u16).to_le_bytes());
                    }
                }
            }
        }
    }
    Ok(PyBytes::new(py, &out))
}

// --- RowBinary to Native ---------------------------------------------------------------------------------

impl Col {
    /// The column's type as ClickHouse names it.
    fn clickhouse(&self) -> &'static str {
        match self {
            Col::Fixed(32) => "FixedString(32)",
            Col::Fixed(_) => unreachable!("only event ids are fixed strings"),
            Col::Str => "String",
            Col::Lc => "LowCardinality(String)",
            Col::U16 => "UInt16",
            Col::U64 => "UInt64",
            Col::Ms => "DateTime64(3, 'UTC')",
            Col::NullableDate => "Nullable(Date)",
        }
    }

    /// Bytes a value takes in Native (None: a length-prefixed string). In RowBinary too, but for a null
    /// date, which is its flag alone.
    fn width(&self) -> Option<usize> {
        match self {
            Col::Fixed(n) => Some(*n),
            Col::U16 => Some(2),
            Col::U64 | Col::Ms => Some(8),
            Col::NullableDate => Some(3), // the null flag, then the date (2 bytes; 0 when null)
            Col::Str | Col::Lc => None,
        }
    }
}

fn varint(data: &[u8], i: &mut usize) -> Result<usize, String> {
    let (mut n, mut shift) = (0u64, 0u32);
    loop {
        let c = *data.get(*i).ok_or("RowBinary ends inside a length")?;
        *i += 1;
        n |= u64::from(c & 0x7f) << shift;
        if c & 0x80 == 0 {
            return usize::try_from(n).map_err(|_| "a length too large".to_string());
        }
        shift += 7;
        if shift > 63 {
            return Err("a length too long".into());
        }
    }
}

fn take<'a>(data: &'a [u8], i: &mut usize, n: usize) -> Result<&'a [u8], String> {
    let end = i.checked_add(n).filter(|e| *e <= data.len()).ok_or("RowBinary ends inside a value")?;
    let s = &data[*i..end];
    *i = end;
    Ok(s)
}

fn varint_len(n: u64) -> usize {
    leb128(n, &mut [0u8; 10]).len()
}

/// A LowCardinality column's dictionary (its first key the type's default, '') and each row's key.
#[derive(Default)]
struct Dictionary<'a> {
    keys: FxMap<&'a [u8], u32>,
    order: Vec<&'a [u8]>,
    index: Vec<u32>,
}

/// What a first pass over the rows learns: their number, each column's size in Native, the dictionaries.
struct Layout<'a> {
    rows: usize,
    sizes: Vec<usize>,
    dictionaries: Vec<Dictionary<'a>>,
}

/// The first pass: checks that the rows are whole, sizes each column, builds the dictionaries.
fn layout<'a>(blocks: &[&'a [u8]]) -> Result<Layout<'a>, String> {
    let mut sizes = vec![0usize; COLUMNS.len()];
    let mut dictionaries: Vec<Dictionary<'a>> = COLUMNS.iter().map(|_| Dictionary::default()).collect();
    for d in dictionaries.iter_mut() {
        d.keys.insert(b"", 0);
        d.order.push(b"");
    }
    let mut rows = 0usize;
    for data in blocks.iter().copied() {
        let mut i = 0usize;
        while i < data.len() {
            for ((c, (_, col)), d) in COLUMNS.iter().enumerate().zip(dictionaries.iter_mut()) {
                match col {
                    Col::NullableDate => {
                        if take(data, &mut i, 1)?[0] == 0 {
                            take(data, &mut i, 2)?;
                        }
                    }
                    Col::Str => {
                        let start = i;
                        let n = varint(data, &mut i)?;
                        take(data, &mut i, n)?;
                        sizes[c] += i - start;
                    }
                    Col::Lc => {
                        let n = varint(data, &mut i)?;
                        let s = take(data, &mut i, n)?;
                        let next = d.order.len() as u32;
                        let k = *d.keys.entry(s).or_insert(next);
                        if k == next {
                            d.order.push(s);
                        }
                        d.index.push(k);
                    }
                    _ => {
                        take(data, &mut i, col.width().expect("a fixed width"))?;
                    }
                }
            }
            rows += 1;
        }
    }
    for (c, (_, col)) in COLUMNS.iter().enumerate() {
        sizes[c] = match col {
            Col::Str => sizes[c],
            Col::Lc => {
                let d = &dictionaries[c];
                let keys: usize = d.order.iter().map(|k| varint_len(k.len() as u64) + k.len()).sum();
                32 + keys + rows * index_width(d.order.len())
            }
            _ => rows * col.width().expect("a fixed width"),
        };
    }
    Ok(Layout { rows, sizes, dictionaries })
}

/// Bytes of a LowCardinality index for a dictionary of `keys` keys.
fn index_width(keys: usize) -> usize {
    match keys {
        0..=0x100 => 1,
        0x101..=0x1_0000 => 2,
        _ => 4,
    }
}

fn header_len(name: &str, col: &Col) -> usize {
    let t = col.clickhouse();
    varint_len(name.len() as u64) + name.len() + varint_len(t.len() as u64) + t.len()
}

/// Bytes of the whole Native block.
fn native_len(l: &Layout<'_>) -> usize {
    let columns: usize = COLUMNS.iter().zip(&l.sizes).map(|((name, col), size)| header_len(name, col) + size).sum();
    varint_len(COLUMNS.len() as u64) + varint_len(l.rows as u64) + columns
}

/// Writes into a buffer of the exact size.
struct Writer<'o> {
    out: &'o mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.out[self.at..self.at + b.len()].copy_from_slice(b);
        self.at += b.len();
    }
    fn varint(&mut self, n: u64) {
        let mut buf = [0u8; 10];
        self.bytes(leb128(n, &mut buf));
    }
    fn string(&mut self, s: &[u8]) {
        self.varint(s.len() as u64);
        self.bytes(s);
    }
}

/// The second pass: the block written into `out` (exactly `native_len` bytes), each column in its place.
fn write_native(blocks: &[&[u8]], l: &Layout<'_>, out: &mut [u8]) {
    // Where each column's next value goes as the rows are read again (a nullable column: its null map's).
    let mut at = vec![0usize; COLUMNS.len()];
    let mut w = Writer { out, at: 0 };
    w.varint(COLUMNS.len() as u64);
    w.varint(l.rows as u64);
    for (c, (name, col)) in COLUMNS.iter().enumerate() {
        w.string(name.as_bytes());
        w.string(col.clickhouse().as_bytes());
        if let Col::Lc = col {
            // SerializationLowCardinality: the keys' version (1: shared dictionaries with additional keys),
            // then one granule: the index width (0: UInt8, 1: UInt16, 2: UInt32) with "has additional keys"
            // and "needs the dictionary updated", the keys as a String column, the row count, the indexes.
            let d = &l.dictionaries[c];
            let width = index_width(d.order.len());
            w.bytes(&1u64.to_le_bytes());
            w.bytes(&(u64::from(width.trailing_zeros()) | 0x200 | 0x400).to_le_bytes());
            w.bytes(&(d.order.len() as u64).to_le_bytes());
            for k in &d.order {
                w.string(k);
            }
            w.bytes(&(l.rows as u64).to_le_bytes());
            for &k in &d.index {
                w.bytes(&k.to_le_bytes()[..width]);
            }
        } else {
            at[c] = w.at;
            w.at += l.sizes[c];
        }
    }
    debug_assert_eq!(w.at, w.out.len());
    let (out, rows) = (w.out, l.rows);
    let mut row = 0usize;
    for data in blocks.iter().copied() {
        let mut i = 0usize;
        while i < data.len() {
            for (c, (_, col)) in COLUMNS.iter().enumerate() {
                match col {
                    Col::Lc | Col::Str => {
                        let start = i;
                        let n = varint(data, &mut i).expect("read by the first pass");
                        i += n;
                        if let Col::Str = col {
                            out[at[c]..at[c] + (i - start)].copy_from_slice(&data[start..i]);
                            at[c] += i - start;
                        }
                    }
                    Col::NullableDate => {
                        // The null map (a byte a row), then the dates (0 where null).
                        let null = data[i];
                        out[at[c]] = null;
                        let value = at[c] - row + rows + 2 * row;
                        if null == 0 {
                            out[value..value + 2].copy_from_slice(&data[i + 1..i + 3]);
                            i += 3;
                        } else {
                            out[value..value + 2].fill(0);
                            i += 1;
                        }
                        at[c] += 1;
                    }
                    _ => {
                        let n = col.width().expect("a fixed width");
                        out[at[c]..at[c] + n].copy_from_slice(&data[i..i + n]);
                        at[c] += n;
                        i += n;
                    }
                }
            }
            row += 1;
        }
    }
}

/// Blocks of RowBinary rows of the `events` columns (as `encode_rows` and the reader write them) as one block
/// of ClickHouse's Native format: the same rows, column by column. ClickHouse parses RowBinary value by value
/// and builds each LowCardinality dictionary row by row (~5.4 µs of a row's ~14 µs insert, measured); it
/// reads a Native block's columns whole (~1 µs). Made without the GIL, in two passes over the rows (sizes and
/// dictionaries, then the values in place), straight into the bytes returned: the block is as large as the
/// rows, and no larger buffer is made on the way.
#[pyfunction]
fn native_block<'py>(py: Python<'py>, blocks: Vec<PyBackedBytes>) -> PyResult<Bound<'py, PyBytes>> {
    let blocks: Vec<&[u8]> = blocks.iter().map(|b| b.as_ref()).collect();
    let l = py.detach(|| layout(&blocks)).map_err(PyValueError::new_err)?;
    // The bytes object is this call's alone until it returns: it is filled without the GIL.
    PyBytes::new_with(py, native_len(&l), |out| {
        py.detach(|| write_native(&blocks, &l, out));
        Ok(())
    })
}

// --- Kafka record batches --------------------------------------------------------------------------------

/// A message as aiokafka's `ConsumerRecord` has it (the same attributes), made from a fetch's bytes at once.
#[pyclass(frozen, get_all, module = "lmis_native")]
struct Message {
    topic: Py<PyString>,
    partition: i64,
    offset: i64,
    timestamp: i64,
    timestamp_type: i64,
    key: Option<Py<PyBytes>>,
    value: Option<Py<PyBytes>>,
    checksum: Option<i64>,
    serialized_key_size: i64,
    serialized_value_size: i64,
    headers: Py<PyTuple>,
}

#[pymethods]
impl Message {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Message(topic={}, partition={}, offset={}, timestamp={})",
            self.topic.bind(py),
            self.partition,
            self.offset,
            self.timestamp
        )
    }
}

struct Bytes<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        Some(s)
    }
    fn i8(&mut self) -> Option<i8> {
        Some(self.take(1)?[0] as i8)
    }
    fn varlong(&mut self) -> Option<i64> {
        let mut n: u64 = 0;
        for shift in (0..70).step_by(7) {
            let c = *self.b.get(self.i)?;
            self.i += 1;
            n |= ((c & 0x7f) as u64) << shift;
            if c & 0x80 == 0 {
                return Some(((n >> 1) as i64) ^ -((n & 1) as i64)); // zigzag
            }
        }
        None
    }
    fn bytes(&mut self) -> Option<Option<&'a [u8]>> {
        let n = self.varlong()?;
        if n < 0 {
            return Some(None);
        }
        Some(Some(self.take(usize::try_from(n).ok()?)?))
    }
}

fn be_i64(b: &[u8]) -> i64 {
    i64::from_be_bytes(b[..8].try_into().unwrap())
}
fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes(b[..4].try_into().unwrap())
}

/// A record as read from a batch: its offset, timestamp, key and value (ranges of the fetch's bytes).
struct Raw<'a> {
    offset: i64,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

/// Why a fetch is left to aiokafka: anything but plain v2 batches (compressed, transactional, control,
/// with headers) -- or a batch whose CRC does not match (aiokafka raises for it).
struct Unusual;

/// The batches of a fetch's message set: (timestamp type, the batch's next offset, its records). A partial
/// batch at the end (a fetch stops at a size) is left out, as aiokafka's `MemoryRecords` does.
#[allow(clippy::type_complexity)]
fn parse_batches(b: &[u8], check_crcs: bool) -> Result<Vec<(i64, i64, Vec<Raw<'_>>)>, Unusual> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while b.len() - pos >= 61 {
        let length = be_i32(&b[pos + 8..]);
        if length < 49 {
            return Err(Unusual);
        }
        let end = pos + 12 + length as usize;
        if end > b.len() {
            break; // partial
        }
        let batch = &b[pos..end];
        if batch[16] != 2 {
            return Err(Unusual); // old message formats
        }
        if check_crcs && crc32c::crc32c(&batch[21..]) != u32::from_be_bytes(batch[17..21].try_into().unwrap()) {
            return Err(Unusual);
        }
        let attributes = i16::from_be_bytes(batch[21..23].try_into().unwrap());
        if attributes & 0x07 != 0 || attributes & 0x30 != 0 {
            return Err(Unusual); // compressed, transactional or control
        }
        let timestamp_type = ((attributes >> 3) & 1) as i64;
        let base_offset = be_i64(batch);
        let next_offset = base_offset + be_i32(&batch[23..]) as i64 + 1;
        let base_timestamp = be_i64(&batch[27..]);
        let max_timestamp = be_i64(&batch[35..]);
        let count = be_i32(&batch[57..]);
        let mut rd = Bytes { b: &batch[61..], i: 0 };
        let mut records = Vec::with_capacity(count.max(0) as usize);
        for _ in 0..count {
            let length = rd.varlong().ok_or(Unusual)?;
            let start = rd.i;
            rd.i8().ok_or(Unusual)?;
            let ts_delta = rd.varlong().ok_or(Unusual)?;
            let offset_delta = rd.varlong().ok_or(Unusual)?;
            let key = rd.bytes().ok_or(Unusual)?;
            let value = rd.bytes().ok_or(Unusual)?;
            let headers = rd.varlong().ok_or(Unusual)?;
            if headers != 0 || rd.i - start != usize::try_from(length).map_err(|_| Unusual)? {
                return Err(Unusual);
            }
            let timestamp = if timestamp_type == 1 { max_timestamp } else { base_timestamp + ts_delta };
            records.push(Raw { offset: base_offset + offset_delta, timestamp, key, value });
        }
        if rd.i != rd.b.len() {
            return Err(Unusual);
        }
        out.push((timestamp_type, next_offset, records));
        pos = end;
    }
    Ok(out)
}

/// The messages of a fetch's message set (one topic-partition), as ``[(messages, next offset), ...]`` per
/// batch, or None: leave it to aiokafka (see `Unusual`). Parsed without the GIL.
#[pyfunction]
fn kafka_messages<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyBytes>,
    topic: &Bound<'py, PyString>,
    partition: i64,
    check_crcs: bool,
) -> PyResult<Option<Bound<'py, PyList>>> {
    let b = data.as_bytes();
    let Ok(batches) = py.detach(|| parse_batches(b, check_crcs)) else { return Ok(None) };
    let out = PyList::empty(py);
    let empty = PyTuple::empty(py).unbind();
    let topic = topic.clone().unbind();
    for (timestamp_type, next_offset, records) in batches {
        let messages = PyList::empty(py);
        for r in records {
            let size = |x: Option<&[u8]>| x.map_or(-1, |x| x.len() as i64);
            messages.append(Message {
                topic: topic.clone_ref(py),
                partition,
                offset: r.offset,
                timestamp: r.timestamp,
                timestamp_type,
                key: r.key.map(|k| PyBytes::new(py, k).unbind()),
                value: r.value.map(|v| PyBytes::new(py, v).unbind()),
                checksum: None,
                serialized_key_size: size(r.key),
                serialized_value_size: size(r.value),
                headers: empty.clone_ref(py),
            })?;
        }
        out.append((messages, next_offset))?;
    }
    Ok(Some(out))
}

#[pymodule]
fn lmis_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Classifier>()?;
    m.add_function(wrap_pyfunction!(encode_rows, m)?)?;
    m.add_function(wrap_pyfunction!(native_block, m)?)?;
    m.add("EVENT_TYPES", PyTuple::new(m.py(), COLUMNS.iter().map(|(_, c)| c.clickhouse()))?)?;
    m.add_function(wrap_pyfunction!(kafka_messages, m)?)?;
    m.add_class::<Message>()?;
    m.add("EVENT_COLUMNS", PyTuple::new(m.py(), COLUMNS.iter().map(|c| c.0))?)?;
    Ok(())
}

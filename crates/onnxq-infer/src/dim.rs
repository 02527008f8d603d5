//! Symbolic dimensions: a dimension is a polynomial with integer coefficients over named symbols
//! (`batch`, `sequence`, and the fresh `unk__N` of a dimension nothing names), normalized so that
//! equal expressions compare equal (`seq + 1` from two different Add nodes is one dimension).
//! Shape arithmetic that leaves polynomials (a floor division that does not divide exactly, a
//! quotient of two symbols) becomes an opaque symbol named after the expression, as ONNX Runtime's
//! sympy-based inference writes it, so it still propagates and compares by its text.

use std::collections::BTreeMap;
use std::fmt;

/// A monomial: its symbols, sorted, with repeats for powers (`[]` is the constant term).
type Monomial = Vec<String>;

/// A dimension: a polynomial over symbols, `Σ coefficient · Π symbols`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dim {
    terms: BTreeMap<Monomial, i64>,
}

impl Dim {
    /// A known size.
    pub fn known(v: i64) -> Dim {
        let mut terms = BTreeMap::new();
        if v != 0 {
            terms.insert(Vec::new(), v);
        }
        Dim { terms }
    }

    /// A named dimension.
    pub fn symbol(name: &str) -> Dim {
        Dim {
            terms: BTreeMap::from([(vec![name.to_owned()], 1)]),
        }
    }

    /// The size, when it is a known integer.
    pub fn value(&self) -> Option<i64> {
        match self.terms.len() {
            0 => Some(0),
            1 => self.terms.get(&Vec::new()).copied(),
            _ => None,
        }
    }

    /// The symbol's name when the dimension is exactly one symbol (`batch`).
    pub fn as_symbol(&self) -> Option<&str> {
        match self.terms.iter().next() {
            Some((m, 1)) if self.terms.len() == 1 && m.len() == 1 => Some(&m[0]),
            _ => None,
        }
    }

    fn normalized(mut self) -> Dim {
        self.terms.retain(|_, c| *c != 0);
        self
    }

    /// `self + other`, or `None` on overflow.
    pub fn add(&self, other: &Dim) -> Option<Dim> {
        let mut terms = self.terms.clone();
        for (m, c) in &other.terms {
            let e = terms.entry(m.clone()).or_insert(0);
            *e = e.checked_add(*c)?;
        }
        Some(Dim { terms }.normalized())
    }

    /// `-self`.
    pub fn neg(&self) -> Option<Dim> {
        let mut terms = BTreeMap::new();
        for (m, c) in &self.terms {
            terms.insert(m.clone(), c.checked_neg()?);
        }
        Some(Dim { terms })
    }

    /// `self - other`.
    pub fn sub(&self, other: &Dim) -> Option<Dim> {
        self.add(&other.neg()?)
    }

    /// `self · other`.
    pub fn mul(&self, other: &Dim) -> Option<Dim> {
        let mut terms: BTreeMap<Monomial, i64> = BTreeMap::new();
        for (ma, ca) in &self.terms {
            for (mb, cb) in &other.terms {
                let mut m: Monomial = ma.iter().chain(mb).cloned().collect();
                m.sort();
                let e = terms.entry(m).or_insert(0);
                *e = e.checked_add(ca.checked_mul(*cb)?)?;
            }
        }
        Some(Dim { terms }.normalized())
    }

    /// `floor(self / other)`: exact where every coefficient divides (or the two are equal, or a
    /// symbol cancels from every term), else an opaque symbol naming the quotient. `None` when
    /// dividing by zero.
    pub fn floor_div(&self, other: &Dim) -> Option<Dim> {
        if let Some(d) = other.value() {
            if d == 0 {
                return None;
            }
            if let Some(v) = self.value() {
                return Some(Dim::known(
                    v.div_euclid(d) - i64::from(v.rem_euclid(d) != 0 && d < 0),
                ));
            }
            if self.terms.values().all(|c| c % d == 0) {
                let terms = self.terms.iter().map(|(m, c)| (m.clone(), c / d)).collect();
                return Some(Dim { terms });
            }
        } else if self == other {
            return Some(Dim::known(1));
        } else if let Some(q) = self.cancel(other) {
            return Some(q);
        }
        Some(Dim::symbol(&format!("floor(({self})/({other}))")))
    }

    /// `self / other` when `other` is one monomial (`32*batch*seq`) dividing every term of
    /// `self` exactly, symbols and coefficient.
    fn cancel(&self, other: &Dim) -> Option<Dim> {
        let (om, &oc) = other.terms.iter().next()?;
        if other.terms.len() != 1 || om.is_empty() || oc == 0 {
            return None;
        }
        let mut terms = BTreeMap::new();
        for (m, c) in &self.terms {
            let mut rest = m.clone();
            for s in om {
                let i = rest.iter().position(|x| x == s)?;
                rest.remove(i);
            }
            if c % oc != 0 {
                return None;
            }
            terms.insert(rest, c / oc);
        }
        Some(Dim { terms })
    }

    /// `max(self, other)` where it is decidable (both known, or equal), else an opaque symbol.
    pub fn maximum(&self, other: &Dim) -> Dim {
        match (self.value(), other.value()) {
            (Some(a), Some(b)) => Dim::known(a.max(b)),
            _ if self == other => self.clone(),
            _ => Dim::symbol(&format!("max({self}, {other})")),
        }
    }

    /// `min(self, other)` where it is decidable, else an opaque symbol.
    pub fn minimum(&self, other: &Dim) -> Dim {
        match (self.value(), other.value()) {
            (Some(a), Some(b)) => Dim::known(a.min(b)),
            _ if self == other => self.clone(),
            _ => Dim::symbol(&format!("min({self}, {other})")),
        }
    }
}

impl fmt::Display for Dim {
    /// Terms by decreasing degree, then by name: `2*seq + 1`, `batch*seq`, `seq - 1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.terms.is_empty() {
            return write!(f, "0");
        }
        let mut terms: Vec<(&Monomial, &i64)> = self.terms.iter().collect();
        terms.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(b.0)));
        for (i, (m, &c)) in terms.into_iter().enumerate() {
            let (sign, mag) = if c < 0 {
                ("-", c.unsigned_abs())
            } else {
                ("+", c as u64)
            };
            match (i, sign) {
                (0, "-") => write!(f, "-")?,
                (0, _) => {}
                _ => write!(f, " {sign} ")?,
            }
            if m.is_empty() {
                write!(f, "{mag}")?;
            } else {
                if mag != 1 {
                    write!(f, "{mag}*")?;
                }
                write!(f, "{}", m.join("*"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: &str) -> Dim {
        Dim::symbol(n)
    }

    /// Equal expressions built differently compare equal and print canonically.
    #[test]
    fn polynomials_normalize() {
        let a = s("seq").add(&Dim::known(1)).unwrap();
        let b = Dim::known(1).add(&s("seq")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "seq + 1");
        let bs = s("batch").mul(&s("seq")).unwrap();
        assert_eq!(bs, s("seq").mul(&s("batch")).unwrap());
        assert_eq!(bs.to_string(), "batch*seq");
        assert_eq!(a.sub(&s("seq")).unwrap().value(), Some(1));
        let two = s("seq").mul(&Dim::known(2)).unwrap();
        assert_eq!(two.to_string(), "2*seq");
        assert_eq!(Dim::known(3).sub(&s("n")).unwrap().to_string(), "-n + 3");
        assert_eq!(s("batch").as_symbol(), Some("batch"));
        assert_eq!(two.as_symbol(), None);
    }

    /// Division: exact where it can be, opaque (but stable) where it cannot.
    #[test]
    fn floor_division() {
        let two = s("seq").mul(&Dim::known(2)).unwrap();
        assert_eq!(two.floor_div(&Dim::known(2)).unwrap(), s("seq"));
        let bs = s("batch").mul(&s("seq")).unwrap();
        assert_eq!(bs.floor_div(&s("batch")).unwrap(), s("seq"));
        assert_eq!(bs.floor_div(&bs).unwrap().value(), Some(1));
        let big = bs.mul(&Dim::known(384)).unwrap();
        let small = bs.mul(&Dim::known(32)).unwrap();
        assert_eq!(big.floor_div(&small).unwrap().value(), Some(12));
        assert_eq!(
            Dim::known(7).floor_div(&Dim::known(2)).unwrap().value(),
            Some(3)
        );
        assert_eq!(
            Dim::known(-7).floor_div(&Dim::known(2)).unwrap().value(),
            Some(-4)
        );
        let odd = s("seq").floor_div(&Dim::known(2)).unwrap();
        assert_eq!(odd, s("seq").floor_div(&Dim::known(2)).unwrap());
        assert_eq!(odd.to_string(), "floor((seq)/(2))");
        assert!(s("seq").floor_div(&Dim::known(0)).is_none());
    }
}

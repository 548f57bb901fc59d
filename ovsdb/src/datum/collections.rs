//! The sets and maps inside a [`Datum`](super::Datum), kept as sorted vectors.
//!
//! OVSDB columns hold a handful of elements, most of them one (a scalar is a one-element
//! set). A `BTreeSet` allocates a whole node for its first element, about 400 bytes
//! for one 32-byte atom, and a replica of a hypervisor's database holds tens of
//! thousands of such values; a vector holds exactly what it has. Both keep their
//! elements ordered and unique, so equality, ordering (element by element), diffs and the
//! encoded JSON are the same as with the B-tree collections.
//!
//! A set keeps its first atom inline: most columns are scalars, and a heap block for each
//! one was a third of the allocations of decoding a hypervisor's monitor reply, and as
//! many frees when a session's replica is dropped.

use std::cmp::Ordering;

use smallvec::SmallVec;

use super::Atom;

/// A set of atoms, sorted and without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct AtomSet(SmallVec<[Atom; 1]>);

impl AtomSet {
    pub fn new() -> Self {
        AtomSet(SmallVec::new())
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> std::slice::Iter<'_, Atom> {
        self.0.iter()
    }
    pub fn first(&self) -> Option<&Atom> {
        self.0.first()
    }
    pub fn last(&self) -> Option<&Atom> {
        self.0.last()
    }
    pub fn contains(&self, atom: &Atom) -> bool {
        self.0.binary_search(atom).is_ok()
    }
    /// Adds `atom`; false when it was already there.
    pub fn insert(&mut self, atom: Atom) -> bool {
        match self.0.binary_search(&atom) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, atom);
                true
            }
        }
    }
    /// Removes `atom`; false when it was not there.
    pub fn remove(&mut self, atom: &Atom) -> bool {
        match self.0.binary_search(atom) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }
    /// Keeps the atoms for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Atom) -> bool) {
        self.0.retain(|a| keep(a));
    }
}

impl FromIterator<Atom> for AtomSet {
    fn from_iter<I: IntoIterator<Item = Atom>>(iter: I) -> Self {
        let mut v: SmallVec<[Atom; 1]> = iter.into_iter().collect();
        v.sort();
        v.dedup();
        v.shrink_to_fit();
        AtomSet(v)
    }
}

impl<const N: usize> From<[Atom; N]> for AtomSet {
    fn from(atoms: [Atom; N]) -> Self {
        atoms.into_iter().collect()
    }
}

impl Extend<Atom> for AtomSet {
    fn extend<I: IntoIterator<Item = Atom>>(&mut self, iter: I) {
        for a in iter {
            self.insert(a);
        }
    }
}

impl IntoIterator for AtomSet {
    type Item = Atom;
    type IntoIter = smallvec::IntoIter<[Atom; 1]>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a AtomSet {
    type Item = &'a Atom;
    type IntoIter = std::slice::Iter<'a, Atom>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A map from atoms to atoms, sorted by key, one value per key.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct AtomMap(Vec<(Atom, Atom)>);

/// What [`AtomMap::iter`] yields: key and value by reference, as a `BTreeMap` does.
pub type Pairs<'a> =
    std::iter::Map<std::slice::Iter<'a, (Atom, Atom)>, fn(&(Atom, Atom)) -> (&Atom, &Atom)>;

impl AtomMap {
    pub fn new() -> Self {
        AtomMap(Vec::new())
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn find(&self, key: &Atom) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.cmp(key))
    }
    pub fn iter(&self) -> Pairs<'_> {
        self.0.iter().map(|(k, v)| (k, v))
    }
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Atom> + ExactSizeIterator {
        self.0.iter().map(|(k, _)| k)
    }
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Atom> + ExactSizeIterator {
        self.0.iter().map(|(_, v)| v)
    }
    pub fn get(&self, key: &Atom) -> Option<&Atom> {
        self.find(key).ok().map(|at| &self.0[at].1)
    }
    pub fn contains_key(&self, key: &Atom) -> bool {
        self.find(key).is_ok()
    }
    /// Sets `key` to `value`; the value it replaced, if any.
    pub fn insert(&mut self, key: Atom, value: Atom) -> Option<Atom> {
        match self.find(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.0[at].1, value)),
            Err(at) => {
                self.0.insert(at, (key, value));
                None
            }
        }
    }
    /// Removes `key`; its value, if it was there.
    pub fn remove(&mut self, key: &Atom) -> Option<Atom> {
        self.find(key).ok().map(|at| self.0.remove(at).1)
    }
    /// Keeps the pairs for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Atom, &Atom) -> bool) {
        self.0.retain(|(k, v)| keep(k, v));
    }
}

impl FromIterator<(Atom, Atom)> for AtomMap {
    /// Like a `BTreeMap`'s: for a key given twice, the last value wins.
    fn from_iter<I: IntoIterator<Item = (Atom, Atom)>>(iter: I) -> Self {
        let mut v: Vec<(Atom, Atom)> = iter.into_iter().collect();
        // A stable sort of the reversed input puts each key's last value first in its run.
        v.reverse();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|later, first| later.0.cmp(&first.0) == Ordering::Equal);
        v.shrink_to_fit();
        AtomMap(v)
    }
}

impl<const N: usize> From<[(Atom, Atom); N]> for AtomMap {
    fn from(pairs: [(Atom, Atom); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl Extend<(Atom, Atom)> for AtomMap {
    fn extend<I: IntoIterator<Item = (Atom, Atom)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl IntoIterator for AtomMap {
    type Item = (Atom, Atom);
    type IntoIter = std::vec::IntoIter<(Atom, Atom)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a AtomMap {
    type Item = (&'a Atom, &'a Atom);
    type IntoIter = Pairs<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Atom {
        Atom::String(x.into())
    }

    #[test]
    fn sets_stay_sorted_and_unique() {
        let mut set: AtomSet = [s("b"), s("a"), s("b")].into_iter().collect();
        assert_eq!(
            set.iter().cloned().collect::<Vec<_>>(),
            vec![s("a"), s("b")]
        );
        assert!(!set.insert(s("a")));
        assert!(set.insert(s("0")));
        assert!(set.remove(&s("b")));
        assert!(!set.remove(&s("b")));
        assert_eq!(
            set.iter().cloned().collect::<Vec<_>>(),
            vec![s("0"), s("a")]
        );
        assert!(set.contains(&s("a")) && !set.contains(&s("b")));
    }

    #[test]
    fn maps_keep_one_value_per_key_the_last_given() {
        let m: AtomMap = [(s("k"), s("1")), (s("a"), s("x")), (s("k"), s("2"))]
            .into_iter()
            .collect();
        let want: std::collections::BTreeMap<Atom, Atom> =
            [(s("k"), s("1")), (s("a"), s("x")), (s("k"), s("2"))]
                .into_iter()
                .collect();
        assert_eq!(
            m.iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>(),
            want.into_iter().collect::<Vec<_>>()
        );
        let mut m = m;
        assert_eq!(m.insert(s("a"), s("y")), Some(s("x")));
        assert_eq!(m.get(&s("a")), Some(&s("y")));
        assert_eq!(m.remove(&s("k")), Some(s("2")));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn order_is_element_by_element_like_the_btree_collections() {
        use std::collections::BTreeSet;
        let sets = [vec![], vec![s("a")], vec![s("a"), s("b")], vec![s("b")]];
        for x in &sets {
            for y in &sets {
                let (bx, by): (BTreeSet<Atom>, BTreeSet<Atom>) =
                    (x.iter().cloned().collect(), y.iter().cloned().collect());
                let (vx, vy): (AtomSet, AtomSet) =
                    (x.iter().cloned().collect(), y.iter().cloned().collect());
                assert_eq!(vx.cmp(&vy), bx.cmp(&by), "{x:?} vs {y:?}");
            }
        }
    }
}

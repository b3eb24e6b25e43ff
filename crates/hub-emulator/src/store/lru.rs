//! A least-recently-used cache bounded by total weight (e.g. tree entries), not entry count, so a
//! few huge directories cannot blow memory while many small ones still fit.

use std::hash::Hash;

use lru::LruCache;

pub struct WeightedLru<K: Hash + Eq, V: Clone> {
    lru: LruCache<K, (V, usize)>,
    weight: usize,
    max_weight: usize,
}

impl<K: Hash + Eq, V: Clone> WeightedLru<K, V> {
    pub fn new(max_weight: usize) -> Self {
        WeightedLru {
            lru: LruCache::unbounded(),
            weight: 0,
            max_weight,
        }
    }

    pub fn get(&mut self, key: &K) -> Option<V> {
        self.lru.get(key).map(|(v, _)| v.clone())
    }

    /// Inserts `value` with `weight` (at least 1), evicting least recently used entries; the
    /// newest entry is always kept even if it alone exceeds the bound.
    pub fn put(&mut self, key: K, value: V, weight: usize) {
        let weight = weight.max(1);
        if let Some((_, old)) = self.lru.put(key, (value, weight)) {
            self.weight -= old;
        }
        self.weight += weight;
        while self.weight > self.max_weight && self.lru.len() > 1 {
            match self.lru.pop_lru() {
                Some((_, (_, w))) => self.weight -= w,
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_by_weight() {
        let mut c = WeightedLru::new(10);
        c.put(1, "a", 4);
        c.put(2, "b", 4);
        assert_eq!(c.get(&1), Some("a"));
        c.put(3, "c", 4); // evicts 2, the least recently used
        assert_eq!(c.get(&2), None);
        assert_eq!(c.get(&1), Some("a"));
        c.put(4, "big", 100); // alone over the bound: kept, everything else evicted
        assert_eq!(c.get(&4), Some("big"));
        assert_eq!(c.get(&1), None);
    }
}

//! The run's scheduler: a dependency queue over the part graph [`crate::graph`] builds.
//!
//! Parts are known by their index in [`Parts::order`]; a part is ready when every part it
//! depends on that this run handles is done, and the ready parts start in install order
//! (so with `jobs = 1` the run is zc.buildout's sequential one). The queue only keeps
//! counts and lists of indices: what a part does when it starts, and whether it succeeds,
//! is the runner's business, which tells the queue with [`Schedule::finish`] or
//! [`Schedule::fail`]. A failed part's dependents never become ready.

use std::collections::BTreeSet;

use crate::graph::Parts;

/// Where one part stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    /// Not handled by this run (`install PART...` names others).
    Skipped,
    /// Some dependency is not done yet.
    Waiting,
    Ready,
    Running,
    Done,
    Failed,
}

/// A dependency queue over part indices.
#[derive(Debug)]
pub struct Schedule {
    node: Vec<Node>,
    /// Per part, how many of its dependencies are not done yet.
    unfinished: Vec<usize>,
    /// Per part, the parts that depend on it (each only once).
    dependents: Vec<Vec<usize>>,
    /// The ready parts, smallest index (earliest in install order) first.
    ready: BTreeSet<usize>,
}

impl Schedule {
    /// A queue of the parts `handled` selects; dependencies on parts it does not select are
    /// taken as met (they are not this run's to wait for).
    pub fn new(parts: &Parts, handled: impl Fn(usize) -> bool) -> Schedule {
        let n = parts.order().len();
        let mut node = vec![Node::Skipped; n];
        let mut unfinished = vec![0; n];
        let mut dependents = vec![Vec::new(); n];
        let mut ready = BTreeSet::new();
        for (i, slot) in node.iter_mut().enumerate() {
            if !handled(i) {
                continue;
            }
            for &d in parts.dependency_indices(i) {
                if handled(d) {
                    unfinished[i] += 1;
                    dependents[d].push(i);
                }
            }
            if unfinished[i] == 0 {
                *slot = Node::Ready;
                ready.insert(i);
            } else {
                *slot = Node::Waiting;
            }
        }
        Schedule {
            node,
            unfinished,
            dependents,
            ready,
        }
    }

    /// The ready part that comes first in install order, without starting it.
    pub fn peek(&self) -> Option<usize> {
        self.ready.first().copied()
    }

    /// Marks a ready part as running.
    pub fn start(&mut self, part: usize) {
        if self.ready.remove(&part) {
            self.node[part] = Node::Running;
        }
    }

    /// A running (or ready) part is done: its dependents whose dependencies are now all done
    /// become ready.
    pub fn finish(&mut self, part: usize) {
        self.ready.remove(&part);
        if matches!(self.node[part], Node::Done | Node::Skipped) {
            return;
        }
        self.node[part] = Node::Done;
        for &d in &self.dependents[part] {
            self.unfinished[d] -= 1;
            if self.unfinished[d] == 0 && self.node[d] == Node::Waiting {
                self.node[d] = Node::Ready;
                self.ready.insert(d);
            }
        }
    }

    /// A part failed: it and its dependents will not be done.
    pub fn fail(&mut self, part: usize) {
        self.ready.remove(&part);
        if self.node[part] != Node::Skipped {
            self.node[part] = Node::Failed;
        }
    }

    /// How many handled parts are not done (waiting, ready, running or failed).
    pub fn left(&self) -> usize {
        self.node
            .iter()
            .filter(|n| !matches!(n, Node::Done | Node::Skipped))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, load_str};

    fn parts(toml: &str) -> Parts {
        let c = load_str(toml, "t", &std::env::temp_dir(), Format::Toml).unwrap();
        let mut r = c.resolver();
        crate::graph::parts(&c, &mut r).unwrap()
    }

    /// a <- b <- d, a <- c; e alone.
    const DIAMOND: &str = "[buildout]\nparts = ['a', 'b', 'c', 'd', 'e']\n\
        [a]\nrecipe = 'r'\n[b]\nrecipe = 'r'\nneeds = ['a']\n[c]\nrecipe = 'r'\nx = '${a:recipe}'\n\
        [d]\nrecipe = 'r'\nneeds = ['b', 'c']\n[e]\nrecipe = 'r'\n";

    #[test]
    fn parts_start_when_their_dependencies_are_done_in_install_order() {
        let p = parts(DIAMOND);
        assert_eq!(p.order(), ["a", "b", "c", "d", "e"]);
        let mut s = Schedule::new(&p, |_| true);
        assert_eq!(s.peek(), Some(0));
        s.start(0);
        assert_eq!(s.peek(), Some(4), "e depends on nothing");
        s.start(4);
        assert_eq!(s.peek(), None);
        s.finish(0);
        assert_eq!(s.peek(), Some(1));
        s.start(1);
        s.start(2);
        s.finish(1);
        assert_eq!(s.peek(), None, "d still waits for c");
        s.finish(2);
        assert_eq!(s.peek(), Some(3));
        s.start(3);
        s.finish(3);
        s.finish(4);
        assert_eq!(s.left(), 0);
    }

    #[test]
    fn a_failed_part_holds_back_its_dependents_only() {
        let p = parts(DIAMOND);
        let mut s = Schedule::new(&p, |_| true);
        s.start(0);
        s.finish(0);
        s.start(1);
        s.fail(1);
        assert_eq!(s.peek(), Some(2));
        s.start(2);
        s.finish(2);
        assert_eq!(s.peek(), Some(4), "d needs the failed b");
        assert_eq!(s.left(), 3);
    }

    #[test]
    fn parts_the_run_does_not_handle_are_not_waited_for() {
        let p = parts(DIAMOND);
        // `install d`: its dependencies are not this run's.
        let mut s = Schedule::new(&p, |i| i == 3);
        assert_eq!(s.peek(), Some(3));
        s.start(3);
        s.finish(3);
        assert_eq!((s.peek(), s.left()), (None, 0));
    }
}

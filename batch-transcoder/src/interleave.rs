//! Orders encoded packets of several streams by decode time before they reach the muxer.
//!
//! Each encoder has its own latency (x264's lookahead holds frames back; AAC does not), so
//! packets arrive in bursts. A packet is released only when every stream that is still open
//! has something queued, which guarantees global decode-time order.

use std::collections::VecDeque;

pub struct Interleaver<T> {
    queues: Vec<VecDeque<(f64, T)>>,
    open: Vec<bool>,
}

impl<T> Interleaver<T> {
    pub fn new(streams: usize) -> Self {
        Interleaver { queues: (0..streams).map(|_| VecDeque::new()).collect(), open: vec![true; streams] }
    }

    /// Queues a packet; `dts` is in seconds and must not decrease within a stream.
    pub fn push(&mut self, stream: usize, dts: f64, item: T) {
        self.queues[stream].push_back((dts, item));
    }

    /// Marks a stream as finished: it no longer holds others back.
    pub fn close(&mut self, stream: usize) {
        self.open[stream] = false;
    }

    /// Whether `stream` holds the others back: open, with nothing queued.
    pub fn waits_for(&self, stream: usize) -> bool {
        self.open[stream] && self.queues[stream].is_empty()
    }

    /// The next packet in decode order, if it can be known yet.
    pub fn pop(&mut self) -> Option<(usize, T)> {
        let blocked = self.queues.iter().zip(&self.open).any(|(q, &open)| open && q.is_empty());
        if blocked {
            return None;
        }
        let stream =
            self.queues.iter().enumerate().filter_map(|(i, q)| q.front().map(|(dts, _)| (i, *dts))).min_by(|a, b| a.1.total_cmp(&b.1))?.0;
        self.queues[stream].pop_front().map(|(_, item)| (stream, item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_every_open_stream() {
        let mut il = Interleaver::new(2);
        il.push(1, 0.0, "a0");
        il.push(1, 0.02, "a1");
        assert_eq!(il.pop(), None);
        il.push(0, -0.066, "v0");
        assert_eq!(il.pop(), Some((0, "v0")));
        assert_eq!(il.pop(), None);
        il.push(0, 0.01, "v1");
        assert_eq!(il.pop(), Some((1, "a0")));
        assert_eq!(il.pop(), Some((0, "v1")));
        assert_eq!(il.pop(), None);
    }

    #[test]
    fn closed_streams_release_the_rest_in_order() {
        let mut il = Interleaver::new(2);
        il.push(0, 1.0, 1);
        il.push(1, 0.5, 2);
        il.push(1, 1.5, 3);
        il.close(0);
        il.close(1);
        let order: Vec<_> = std::iter::from_fn(|| il.pop()).map(|(_, v)| v).collect();
        assert_eq!(order, vec![2, 1, 3]);
    }
}

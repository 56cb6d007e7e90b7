//! Samples of the process's resident memory (RSS), through `memory-stats`.
//!
//! RSS is noisy (the allocator keeps freed pages, the OS maps lazily), so it is only meaningful
//! as steady growth over many iterations in one process, after a warm-up: [`RssSampler::slope`]
//! fits a line through the samples.

/// Samples of the process's resident memory (RSS), one per iteration you choose to sample.
#[derive(Debug, Clone, Default)]
pub struct RssSampler {
    samples: Vec<(u64, usize)>,
}

impl RssSampler {
    /// An empty series.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process's current RSS in bytes, if the platform reports it.
    pub fn current() -> Option<usize> {
        memory_stats::memory_stats().map(|stats| stats.physical_mem)
    }

    /// Records the current RSS against `iteration`. Returns it, or `None` where unsupported.
    pub fn sample(&mut self, iteration: u64) -> Option<usize> {
        let rss = Self::current()?;
        self.push(iteration, rss);
        Some(rss)
    }

    /// Records a reading taken elsewhere (a child process's, or a test's).
    pub fn push(&mut self, iteration: u64, rss: usize) {
        self.samples.push((iteration, rss));
    }

    /// The samples so far: `(iteration, RSS bytes)`.
    pub fn samples(&self) -> &[(u64, usize)] {
        &self.samples
    }

    /// Last sample minus first, in bytes.
    pub fn growth(&self) -> isize {
        match (self.samples.first(), self.samples.last()) {
            (Some(&(_, first)), Some(&(_, last))) => last as isize - first as isize,
            _ => 0,
        }
    }

    /// Least-squares growth in bytes per iteration; robust to the odd noisy sample.
    pub fn slope(&self) -> f64 {
        let n = self.samples.len() as f64;
        if n < 2.0 {
            return 0.0;
        }
        let mean_x = self.samples.iter().map(|&(x, _)| x as f64).sum::<f64>() / n;
        let mean_y = self.samples.iter().map(|&(_, y)| y as f64).sum::<f64>() / n;
        let (mut num, mut den) = (0.0, 0.0);
        for &(x, y) in &self.samples {
            let dx = x as f64 - mean_x;
            num += dx * (y as f64 - mean_y);
            den += dx * dx;
        }
        if den == 0.0 { 0.0 } else { num / den }
    }
}

#[cfg(test)]
mod tests {
    use super::RssSampler;

    #[test]
    fn growth_and_slope_follow_the_samples() {
        let mut sampler = RssSampler::new();
        assert_eq!((sampler.growth(), sampler.slope()), (0, 0.0));
        for (iteration, rss) in [(0, 1000), (10, 2000), (20, 3000)] {
            sampler.push(iteration, rss);
        }
        assert_eq!(sampler.growth(), 2000);
        assert!((sampler.slope() - 100.0).abs() < 1e-9);
        assert!(RssSampler::new().sample(0).is_none_or(|rss| rss > 0));
    }
}

//! The pipeline's stages measured directly, through the library: rendering the shipped template
//! at 10,000 and 100,000 keys (compiled once), and applying its output (the unchanged plan, and
//! a full plan → stage → swap → commit). Run: `cargo bench --bench pipeline`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use confd_rs::apply::{self, Plan, Target};
use confd_rs::render::{KeySpace, Template};

const RUNS: usize = 20;

fn main() {
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/nginx-upstreams.conf.tmpl"
    ))
    .expect("shipped template");
    let template = Template::compile("nginx-upstreams.conf.tmpl", &source).expect("compiles");
    for keys in [10_000, 100_000] {
        let kvs = Arc::new(instances(keys));
        let render = || {
            template
                .render(KeySpace::all(kvs.clone()), &[])
                .expect("renders")
                .text
        };
        let text = render();
        let times = median_of(|| {
            render();
        });
        println!(
            "render, {keys} keys ({} KB out):        median {:.1} ms  max {:.1} ms",
            text.len() / 1024,
            ms(times.0),
            ms(times.1)
        );
        apply_figures(keys, &text);
    }
}

fn apply_figures(keys: usize, text: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = Target {
        dest: dir.path().join("upstreams.conf"),
        mode: None,
        uid: None,
        gid: None,
        keep_stage_file: false,
    };
    let write = |t: &str| match apply::plan(&target, t.to_owned()).expect("plan") {
        Plan::Write(w) => w.stage().expect("stage").swap().expect("swap").commit(),
        Plan::Unchanged => {}
    };
    write(text);
    let unchanged = median_of(|| {
        assert!(matches!(
            apply::plan(&target, text.to_owned()).expect("plan"),
            Plan::Unchanged
        ));
    });
    let mut flip = false;
    let installed = median_of(|| {
        flip = !flip;
        write(if flip { "# other\n" } else { text });
    });
    println!(
        "apply, {keys} keys: unchanged plan median {:.2} ms; plan+stage+swap+commit median {:.2} ms (two fsyncs)",
        ms(unchanged.0),
        ms(installed.0)
    );
}

/// `n` instance keys the seed's way, 10 per service.
fn instances(n: usize) -> BTreeMap<String, String> {
    (0..n)
        .map(|i| {
            let s = i / 10;
            let ip = format!("10.{}.{}.{}", s / 250, s % 250, i % 10 + 1);
            (format!("/svc{s:04}_PRE/{ip}-8080"), format!("{ip}:8080"))
        })
        .collect()
}

/// Median and max of RUNS timed calls.
fn median_of(mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[RUNS / 2], times[RUNS - 1])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

//! Speed of the CNN in this crate: training images/s and inference latency for one image and a
//! batch of 64, on random digits with a fixed thread count. `cargo xtask bench` runs this next
//! to the same network in PyTorch and prints the ratio. Prints one JSON object per figure.

use std::time::Instant;
use tch::{Device, Kind, Tensor, nn::ModuleT};

use pipeline::model::train::{self, Batch};
use pipeline::model::{Architecture, Net};
use pipeline::params::TrainParams;

fn main() {
    pipeline::alloc::keep_freed_memory();
    let threads: i32 = std::env::var("BENCH_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(2);
    tch::set_num_threads(threads);
    tch::set_num_interop_threads(1);
    tch::manual_seed(0);
    let n = 6000i64;
    let xs = Tensor::randn([n, 784], (Kind::Float, Device::Cpu));
    let ys = Tensor::randint(10, [n], (Kind::Int64, Device::Cpu));
    let data = Batch { xs, ys };
    let vs = train::seeded_store(Device::Cpu, 0);
    let net = Net::new(&vs.root(), Architecture::default());
    let params = TrainParams { seed: 0, epochs: 1, batch_size: 64, learning_rate: 1e-3, augment_copies: 0 };
    train::train(&vs, &net, &data, &params).unwrap();
    let started = Instant::now();
    let epochs = 2;
    train::train(&vs, &net, &data, &TrainParams { epochs, ..params }).unwrap();
    let train_ips = (n as f64 * epochs as f64) / started.elapsed().as_secs_f64();
    println!("{{\"figure\": \"train_images_per_s\", \"value\": {train_ips:.1}}}");

    for (batch, iters) in [(1i64, 3000usize), (64, 300)] {
        let x = Tensor::randn([batch, 1, 28, 28], (Kind::Float, Device::Cpu));
        let mut times = Vec::with_capacity(iters);
        tch::no_grad(|| {
            for _ in 0..iters / 10 {
                let _ = net.forward_t(&x, false).softmax(-1, Kind::Float);
            }
            for _ in 0..iters {
                let t = Instant::now();
                let out = net.forward_t(&x, false).softmax(-1, Kind::Float);
                let _first: f64 = out.double_value(&[0, 0]);
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
        });
        times.sort_by(f64::total_cmp);
        let p50 = times[times.len() / 2];
        println!("{{\"figure\": \"batch{batch}_p50_ms\", \"value\": {p50:.4}}}");
        println!("{{\"figure\": \"batch{batch}_images_per_s\", \"value\": {:.1}}}", batch as f64 * 1e3 / p50);
    }
}

//! Speed of a network of this crate: training images/s and inference latency for one image and a
//! batch of 64, on random inputs with a fixed thread count. `BENCH_ARCH` picks it: `cnn` (on
//! MNIST's 1x28x28, ten classes) or `resnet` (on 3x32x32 colour inputs, four classes).
//! `cargo xtask bench model` runs this next to the same network in PyTorch and prints the
//! ratio. Prints one JSON object per figure.

use std::time::Instant;
use tch::{Device, Kind, Tensor};

use gitops::architecture::{Architecture, ResnetParams};
use gitops::params::TrainParams;
use gitops::task::{InputShape, Normalize, Preprocess, Task};
use model::train::{self, Batch};

fn main() {
    model::alloc::keep_freed_memory();
    let threads: i32 = std::env::var("BENCH_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(2);
    tch::set_num_threads(threads);
    tch::set_num_interop_threads(1);
    tch::manual_seed(0);
    let (task, arch) = match std::env::var("BENCH_ARCH").as_deref() {
        Ok("resnet") => (
            Task {
                classes: ["circle", "cross", "square", "triangle"].map(String::from).to_vec(),
                input: InputShape { channels: 3, height: 32, width: 32 },
                normalize: Normalize { mean: vec![0.5; 3], std: vec![0.25; 3] },
                preprocess: Preprocess::Fit,
                ..Task::default()
            },
            Architecture::Resnet(ResnetParams::default()),
        ),
        _ => (Task::default(), Architecture::default()),
    };
    let shape = [task.input.channels, task.input.height, task.input.width].map(i64::from);
    let n = 6000i64;
    let xs = Tensor::randn([n, shape.iter().product()], (Kind::Float, Device::Cpu));
    let ys = Tensor::randint(task.class_count() as i64, [n], (Kind::Int64, Device::Cpu));
    let data = Batch { xs, ys };
    let vs = train::seeded_store(Device::Cpu, 0);
    let net = model::arch::build(&arch, &vs.root(), &task);
    let params = TrainParams { seed: 0, epochs: 1, batch_size: 64, learning_rate: 1e-3, augment_copies: 0 };
    train::train(&vs, &net, &data, &params).unwrap();
    let started = Instant::now();
    let epochs = 2;
    train::train(&vs, &net, &data, &TrainParams { epochs, ..params }).unwrap();
    let train_ips = (n as f64 * epochs as f64) / started.elapsed().as_secs_f64();
    println!("{{\"figure\": \"train_images_per_s\", \"value\": {train_ips:.1}}}");

    for (batch, iters) in [(1i64, 3000usize), (64, 300)] {
        let x = Tensor::randn([batch, shape[0], shape[1], shape[2]], (Kind::Float, Device::Cpu));
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

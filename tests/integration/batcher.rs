//! Seeded batching: same seed, same batches; every image once per epoch.

use candle_core::{Device, Tensor};
use ganzoo::data::{Batch, Batcher, BatcherConfig, DataError, ImageDataset, ImageShape};

fn dataset(n: usize) -> ImageDataset {
    let shape = ImageShape { channels: 1, height: 2, width: 1 };
    // Image i has pixels (i, 255 - i) and label i % 3.
    let pixels = (0..n).flat_map(|i| [i as u8, 255 - i as u8]).collect();
    let labels = (0..n).map(|i| (i % 3) as u32).collect();
    ImageDataset::new(pixels, labels, shape, vec!["a".into(), "b".into(), "c".into()]).unwrap()
}

fn first_pixels(b: &Batcher, epoch: u64) -> Vec<Vec<f32>> {
    b.epoch(epoch)
        .map(|batch| {
            batch.unwrap().images.flatten_from(1).unwrap().to_vec2::<f32>().unwrap().into_iter().map(|r| r[0]).collect()
        })
        .collect()
}

#[test]
fn same_seed_gives_the_same_batches_and_epochs_differ() {
    let config = BatcherConfig { batch_size: 4, drop_last: true, seed: 11 };
    let a = Batcher::new(dataset(10), config, Device::Cpu).unwrap();
    let b = Batcher::new(dataset(10), config, Device::Cpu).unwrap();
    assert_eq!(first_pixels(&a, 0), first_pixels(&b, 0));
    assert_ne!(a.order(0), a.order(1));
    let other = Batcher::new(dataset(10), BatcherConfig { seed: 12, ..config }, Device::Cpu).unwrap();
    assert_ne!(a.order(0), other.order(0));
    // Random access gives the batch the iterator gives.
    let third = a.batch(1, 1).unwrap().images.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let iter = a.epoch(1).nth(1).unwrap().unwrap().images.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(third, iter);
}

#[test]
fn each_epoch_visits_every_image_once_scaled_to_minus_one_one() {
    let n = 10;
    let b = Batcher::new(dataset(n), BatcherConfig { batch_size: 3, drop_last: false, seed: 1 }, Device::Cpu).unwrap();
    assert_eq!(b.batches_per_epoch(), 4);
    let mut seen = Vec::new();
    for batch in b.epoch(0) {
        let batch = batch.unwrap();
        let (bn, c, h, w) = batch.images.dims4().unwrap();
        assert_eq!((c, h, w), (1, 2, 1));
        let rows = batch.images.flatten_from(1).unwrap().to_vec2::<f32>().unwrap();
        let labels = batch.labels.to_vec1::<u32>().unwrap();
        assert_eq!(rows.len(), bn);
        for (r, l) in rows.iter().zip(labels) {
            let i = ((r[0] + 1.0) * 127.5).round() as usize;
            assert_eq!(r[0], i as f32 / 127.5 - 1.0);
            assert_eq!(r[1], (255 - i) as f32 / 127.5 - 1.0);
            assert_eq!(l as usize, i % 3, "label travels with its image");
            seen.push(i);
        }
    }
    seen.sort();
    assert_eq!(seen, (0..n).collect::<Vec<_>>());
}

#[test]
fn drop_last_and_bad_sizes() {
    let b = Batcher::new(dataset(10), BatcherConfig { batch_size: 3, drop_last: true, seed: 0 }, Device::Cpu).unwrap();
    assert_eq!(b.batches_per_epoch(), 3);
    assert!(b.epoch(0).all(|batch| batch.unwrap().images.dims4().unwrap().0 == 3));
    assert!(b.batch(0, 3).is_err());
    let zero = Batcher::new(dataset(4), BatcherConfig { batch_size: 0, drop_last: true, seed: 0 }, Device::Cpu);
    assert!(matches!(zero.unwrap_err(), DataError::InvalidArgument(_)));
    let too_big = Batcher::new(dataset(4), BatcherConfig { batch_size: 5, drop_last: true, seed: 0 }, Device::Cpu);
    assert!(too_big.is_err());
}

#[test]
fn batches_cut_from_a_copy_on_the_device_are_the_hosts_bit_for_bit() {
    // Every byte value, in 7 images of 40 pixels; a last batch short of the others.
    let shape = ImageShape { channels: 2, height: 4, width: 5 };
    let pixels: Vec<u8> = (0..7 * 40).map(|i| (i * 37 % 256) as u8).collect();
    assert!((0..=255u8).all(|p| pixels.contains(&p)));
    let data = ImageDataset::new(pixels, (0..7).map(|i| i % 2).collect(), shape, vec!["a".into(), "b".into()]).unwrap();
    let config = BatcherConfig { batch_size: 3, drop_last: false, seed: 5 };
    let host = Batcher::with_residence(data.clone(), config, Device::Cpu, false).unwrap();
    let resident = Batcher::with_residence(data.clone(), config, Device::Cpu, true).unwrap();
    assert!(!host.resident() && resident.resident());
    assert!(!Batcher::new(data, config, Device::Cpu).unwrap().resident(), "the CPU batches on the host");
    let bits =
        |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for (epoch, index) in [(0, 0), (0, 2), (1, 1), (0, 1), (3, 2)] {
        let (a, b) = (host.batch(epoch, index).unwrap(), resident.batch(epoch, index).unwrap());
        assert_eq!(a.images.dims(), b.images.dims());
        assert_eq!(bits(&a.images), bits(&b.images), "epoch {epoch} batch {index}");
        assert_eq!(a.labels.to_vec1::<u32>().unwrap(), b.labels.to_vec1::<u32>().unwrap());
    }
}

#[test]
fn the_kept_order_follows_the_epoch_asked_for() {
    let config = BatcherConfig { batch_size: 2, drop_last: true, seed: 3 };
    let b = Batcher::new(dataset(10), config, Device::Cpu).unwrap();
    let values = |batch: Batch| batch.images.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    // Back and forth between epochs: each batch is the images its epoch's order names.
    for (epoch, index) in [(2, 0), (2, 4), (0, 1), (2, 3), (5, 0), (0, 1)] {
        let order = Batcher::new(dataset(10), config, Device::Cpu).unwrap().order(epoch);
        let want: Vec<f32> = order[index * 2..index * 2 + 2]
            .iter()
            .flat_map(|&i| [i as f32 / 127.5 - 1.0, (255 - i) as f32 / 127.5 - 1.0])
            .collect();
        assert_eq!(values(b.batch(epoch, index).unwrap()), want, "epoch {epoch} batch {index}");
    }
}

#[test]
fn a_subset_keeps_the_images_and_labels_asked_for_in_order() {
    let data = dataset(6);
    let picked = data.subset(&[4, 1, 4]).unwrap();
    assert_eq!((picked.len(), picked.shape()), (3, data.shape()));
    assert_eq!(picked.labels(), &[data.labels()[4], data.labels()[1], data.labels()[4]]);
    for (k, &i) in [4, 1, 4].iter().enumerate() {
        assert_eq!(picked.image(k), data.image(i));
    }
    assert_eq!(picked.class_names(), data.class_names());
    assert!(
        matches!(data.subset(&[6]), Err(DataError::InvalidArgument(m)) if m.contains("image 6 of a data set of 6"))
    );
}

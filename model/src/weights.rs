//! A model's weights in libtorch: saving a var store as the safetensors file a
//! [`ModelFile`] names (then its sidecar), and loading a verified model onto a device. The
//! files, their names and their verification are `gitops::model_file`'s, torch free.

use std::path::Path;
use tch::{Device, nn};

use gitops::architecture::Architecture;
use gitops::model_file::{ModelError, ModelFile, Sidecar, Verified, sha256_file};
use gitops::task::Task;

use crate::arch::{self, Network};

/// Saving and loading the weights of a [`ModelFile`].
pub trait Weights {
    /// Writes the weights of `vs` and then the sidecar, each atomically.
    fn save(&self, vs: &nn::VarStore, sidecar: Sidecar) -> Result<Sidecar, ModelError>;
    /// Verifies ([`ModelFile::verify`]) and loads the model onto `device`. The model must have
    /// been trained for `task`; with `expected`, its architecture must match too.
    fn load(&self, device: Device, task: &Task, expected: Option<&Architecture>) -> Result<LoadedModel, ModelError>;
}

impl Weights for ModelFile {
    fn save(&self, vs: &nn::VarStore, mut sidecar: Sidecar) -> Result<Sidecar, ModelError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ModelError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let weights = self.weights_path();
        let tmp = self.dir.join(format!(".{}.partial.safetensors", self.version));
        vs.save(&tmp).map_err(|e| ModelError::Weights { path: tmp.clone(), reason: e.to_string() })?;
        std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io(&tmp))?;
        sidecar.version = self.version.clone();
        sidecar.weights = format!("{}.safetensors", self.version);
        sidecar.sha256 = sha256_file(&tmp)?;
        std::fs::rename(&tmp, &weights).map_err(io(&weights))?;
        self.write_sidecar(&sidecar)?;
        Ok(sidecar)
    }

    fn load(&self, device: Device, task: &Task, expected: Option<&Architecture>) -> Result<LoadedModel, ModelError> {
        let Verified { sidecar, bytes } = self.verify(task, expected)?;
        let mut vs = nn::VarStore::new(device);
        let net = arch::build(&sidecar.architecture, &vs.root(), &sidecar.task);
        copy_weights(&mut vs, &bytes)
            .map_err(|e| ModelError::Weights { path: self.weights_path(), reason: e.to_string() })?;
        Ok(LoadedModel { vs, net, sidecar })
    }
}

/// Copies the safetensors in `bytes` (the very bytes that were hashed) into the store, refusing
/// missing, extra or misshapen tensors.
fn copy_weights(vs: &mut nn::VarStore, bytes: &[u8]) -> Result<(), tch::TchError> {
    let file = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| tch::TchError::FileFormat(format!("not a safetensors file: {e}")))?;
    let weights: Vec<(String, tch::Tensor)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| Ok((name, view.try_into()?)))
        .collect::<Result<_, tch::TchError>>()?;
    let mut vars = vs.variables();
    if weights.len() != vars.len() {
        return Err(tch::TchError::Shape(format!(
            "{} tensors in the file, {} in the network",
            weights.len(),
            vars.len()
        )));
    }
    tch::no_grad(|| {
        for (name, tensor) in weights {
            let var =
                vars.get_mut(&name).ok_or_else(|| tch::TchError::TensorNameNotFound(name.clone(), "network".into()))?;
            if var.size() != tensor.size() {
                return Err(tch::TchError::Shape(format!(
                    "{name}: {:?} in the file, {:?} in the network",
                    tensor.size(),
                    var.size()
                )));
            }
            var.f_copy_(&tensor)?;
        }
        Ok(())
    })
}

/// A verified model, ready to run.
#[derive(Debug)]
pub struct LoadedModel {
    pub vs: nn::VarStore,
    pub net: Network,
    pub sidecar: Sidecar,
}

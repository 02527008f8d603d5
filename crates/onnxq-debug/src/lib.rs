//! Quantization debugging: a float model against its quantized counterpart.
//!
//! [`weights`] matches every quantized constant of the quantized model to its float weight and
//! measures the error without integer wrap-around; [`activations`] runs both models on the same
//! samples and compares their tensors (pre- against post-QDQ inside the quantized model, float
//! against quantized across the two), accumulating sums per sample so memory does not grow with
//! the number of samples; [`rank`] finds where the error starts; [`report`] is the versioned
//! JSON and [`html`] its self-contained page.

pub mod activations;
pub mod compare;
mod error;
pub mod html;
mod html_cells;
mod html_plot;
pub mod order;
pub mod rank;
pub mod report;
pub mod speed;
pub mod stats;
mod values;
pub mod weights;

pub use compare::{Options, Prepared, compare, prepare};
pub use error::Error;
pub use report::Report;

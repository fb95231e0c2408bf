//! Frappe HR / ERPNext: punches become Employee Checkins.

mod config;

pub use config::{FrappeConfig, LogChoice, LogTypes, RawFrappeConfig, ShiftTypeMapping};

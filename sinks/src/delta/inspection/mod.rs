//! Reading a table back for people: the commit [`history`], the [`layout`] of its live
//! files, the [`skipping`] figure of a lookup, and [`validate`] against the store.

pub mod history;
pub mod layout;
pub mod skipping;
pub mod validate;

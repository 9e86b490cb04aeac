pub mod opa;

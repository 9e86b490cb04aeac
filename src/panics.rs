//! Panics of third-party readers turned into errors: the Parquet and Arrow readers
//! assert on some corrupt inputs instead of returning an error, and a corrupt file must
//! be a clear error naming it, not a crash. Used by the sources and the engines'
//! row readers alike.

thread_local! {
    /// Set while this thread runs code whose panics [`contain_panics`] turns into errors.
    static CONTAINED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic into `Err(message)`. The Parquet reader asserts on some
/// corrupt inputs (negative offsets in the footer, missing dictionary pages) instead of
/// returning an error; a corrupt file must be a clear error naming it, not a crash, and
/// the panic message is kept off stderr (the error says what happened).
pub fn contain_panics<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CONTAINED.with(|c| c.get()) {
                previous(info);
            }
        }));
    });
    let outer = CONTAINED.with(|c| c.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CONTAINED.with(|c| c.set(outer));
    r.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".into())
    })
}

// The live stream's listeners, in a module of their own so that pages can
// subscribe when their module is first evaluated.

const listeners = new Set();

/** Subscribes to the live stream: `fn(type, data)`; returns the unsubscribe. */
export function onLive(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function emit(type, payload) {
  for (const fn of listeners) fn(type, payload);
}

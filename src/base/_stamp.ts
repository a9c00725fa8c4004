// Private data on objects memkit made (mostly its ArrayBuffers over native
// memory), kept in a private class field added through the constructor
// return-override trick. No caller can see, read or edit a private field (no
// reflection reaches one), unlike a symbol property; and adding one costs a
// property add whose shape change the engine caches, where a WeakMap entry
// costs an ephemeron-table insert and weighs on every garbage collection
// (measured: a SystemAllocator alloc+free pair took 2.3x as long with its
// block records in a WeakMap).

// `super(object)` in a subclass makes `object` the instance, so the
// subclass's private field lands on it.
class Target {
  constructor(object: object) {
    return object;
  }
}

/** A private slot on objects: `get` is undefined until `set`. */
export interface Stamp<T> {
  get(object: object): T | undefined;
  set(object: object, value: T): void;
}

/** A new private slot (each call makes a distinct one). */
export function createStamp<T>(): Stamp<T> {
  class Stamped extends Target {
    #value: T | undefined;
    constructor(object: object, value: T) {
      super(object);
      this.#value = value;
    }
    static get(object: object): T | undefined {
      return #value in object ? (object as Stamped).#value : undefined;
    }
    static set(object: object, value: T): void {
      if (#value in object) (object as Stamped).#value = value;
      else new Stamped(object, value);
    }
  }
  return { get: Stamped.get, set: Stamped.set };
}

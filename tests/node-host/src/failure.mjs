// jco turns an import's `result<T, E>` into "return T or throw": a thrown error with a
// `payload` property becomes `err(payload)`; anything else traps the engine.

export class ComponentFailure extends Error {
  constructor(payload) {
    super(typeof payload === 'string' ? payload : payload.val ?? payload.message ?? payload.tag);
    this.payload = payload;
  }
}

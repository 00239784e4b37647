import { Schema, model, type Types } from 'mongoose';

/** A login session. Only the SHA-256 of the token is stored, so a database leak gives no tokens. */
export interface SessionDoc {
  _id: Types.ObjectId;
  /** base64url SHA-256 of the bearer token. */
  tokenHash: string;
  user: Types.ObjectId;
  expiresAt: Date;
  createdAt: Date;
}

const sessionSchema = new Schema<SessionDoc>(
  {
    tokenHash: { type: String, required: true, unique: true },
    user: { type: Schema.Types.ObjectId, required: true, ref: 'User' },
    expiresAt: { type: Date, required: true },
  },
  { timestamps: { createdAt: true, updatedAt: false }, versionKey: false, autoIndex: false },
);
/** MongoDB removes expired sessions itself; see ensureIndexes for servers without TTL indexes. */
export const sessionTtlIndex = { fields: { expiresAt: 1 }, options: { expireAfterSeconds: 0 } } as const;
sessionSchema.index(sessionTtlIndex.fields, sessionTtlIndex.options);
sessionSchema.index({ user: 1 });

export const SessionModel = model<SessionDoc>('Session', sessionSchema);

import { Schema, model, type Types } from 'mongoose';
import { ENTITY_POLICIES } from '../generated/entities.js';
import { versionedPlugin } from './versioned.plugin.js';
import { writeBehindPlugin } from './write-behind.plugin.js';

/** The roles of the contract's `Role` enum. */
export const roles = ['CUSTOMER', 'ADMIN'] as const;
export type Role = (typeof roles)[number];

/** The fields of a user that a write-behind `updateUser` may set: `@entity(writeBehind:)` on User in schema/users.graphql. */
export const userWriteBehindFields = ENTITY_POLICIES.User.writeBehind.set;
export type UserWriteBehindField = (typeof userWriteBehindFields)[number];

/** A user as stored (lean), and as resolvers and the cache see it. */
export interface UserDoc {
  _id: Types.ObjectId;
  name: string;
  /** Lower-cased; unique. */
  email: string;
  /** `scrypt$N$r$p$salt$hash` (see services/password.ts); never leaves the server. */
  passwordHash: string;
  role: Role;
  /** Set by deleteUser: hidden from queries, still shown as the user of past orders. */
  deletedAt?: Date | null;
  version: number;
  /** Write-behind bookkeeping (see models/write-behind.plugin.ts). */
  wbSeq?: string | null;
  wbAt?: Partial<Record<UserWriteBehindField, number>> | null;
  createdAt: Date;
  updatedAt: Date;
}

const userSchema = new Schema<UserDoc>(
  {
    name: { type: String, required: true, trim: true, maxlength: 100 },
    email: { type: String, required: true, lowercase: true, trim: true, unique: true },
    passwordHash: { type: String, required: true },
    role: { type: String, enum: roles, required: true, default: 'CUSTOMER' },
    deletedAt: { type: Date, default: null },
  },
  { timestamps: true, versionKey: false, autoIndex: false },
);
userSchema.plugin(versionedPlugin);
userSchema.plugin(writeBehindPlugin, { fields: userWriteBehindFields });

export const UserModel = model<UserDoc>('User', userSchema);

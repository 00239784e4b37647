import { Schema, model, type Types } from 'mongoose';
import { versionedPlugin } from './versioned.plugin.js';

/** A review as stored (lean), and as resolvers and the cache see it. */
export interface ReviewDoc {
  _id: Types.ObjectId;
  product: Types.ObjectId;
  author: Types.ObjectId;
  /** 1..5. */
  rating: number;
  body?: string | null;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

const reviewSchema = new Schema<ReviewDoc>(
  {
    product: { type: Schema.Types.ObjectId, required: true, ref: 'Product' },
    author: { type: Schema.Types.ObjectId, required: true, ref: 'User' },
    rating: { type: Number, required: true, min: 1, max: 5 },
    body: { type: String, default: null, maxlength: 5_000 },
  },
  { timestamps: true, versionKey: false, autoIndex: false },
);
reviewSchema.plugin(versionedPlugin);
// Reviews of a product and of an author, newest first.
reviewSchema.index({ product: 1, createdAt: -1, _id: -1 });
reviewSchema.index({ author: 1, createdAt: -1, _id: -1 });

export const ReviewModel = model<ReviewDoc>('Review', reviewSchema);

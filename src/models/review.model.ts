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
  /**
   * Set while the review's count change (+1 when created, -1 when being deleted) is not yet
   * settled on its product; cleared (or the review deleted) once it is. See services/review-counts.ts.
   */
  counting?: { delta: 1 | -1; at: Date } | null;
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
    counting: { type: new Schema({ delta: { type: Number, enum: [1, -1] }, at: Date }, { _id: false }), default: undefined },
  },
  { timestamps: true, versionKey: false, autoIndex: false },
);
reviewSchema.plugin(versionedPlugin);
// Reviews of a product and of an author, newest first.
reviewSchema.index({ product: 1, createdAt: -1, _id: -1 });
reviewSchema.index({ author: 1, createdAt: -1, _id: -1 });

export const ReviewModel = model<ReviewDoc>('Review', reviewSchema);

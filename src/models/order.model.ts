import { Schema, model, type Types } from 'mongoose';
import { versionedPlugin } from './versioned.plugin.js';

/** One line of an order. */
export interface OrderItemDoc {
  product: Types.ObjectId;
  quantity: number;
  /** The product's price when the order was placed. */
  unitPriceCents: number;
}

/** An order as stored (lean), and as resolvers and the cache see it. */
export interface OrderDoc {
  _id: Types.ObjectId;
  user: Types.ObjectId;
  items: OrderItemDoc[];
  totalCents: number;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

const orderItemSchema = new Schema<OrderItemDoc>(
  {
    product: { type: Schema.Types.ObjectId, required: true, ref: 'Product' },
    quantity: { type: Number, required: true, min: 1 },
    unitPriceCents: { type: Number, required: true, min: 0 },
  },
  { _id: false },
);

const orderSchema = new Schema<OrderDoc>(
  {
    user: { type: Schema.Types.ObjectId, required: true, ref: 'User' },
    items: { type: [orderItemSchema], required: true },
    totalCents: { type: Number, required: true, min: 0 },
  },
  { timestamps: true, versionKey: false, autoIndex: false },
);
orderSchema.plugin(versionedPlugin);
orderSchema.index({ user: 1, createdAt: -1, _id: -1 });

export const OrderModel = model<OrderDoc>('Order', orderSchema);

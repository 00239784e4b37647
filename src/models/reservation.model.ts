import { Schema, model, type Types } from 'mongoose';

/** One product's share of a reservation. */
export interface ReservationLineDoc {
  product: Types.ObjectId;
  quantity: number;
}

/**
 * The journal of a `placeOrder` in progress, written before any stock moves. Its `_id` is the
 * order's `_id`, and each product it reserved lists that id in `holds`. It is deleted when the
 * order is placed or given up; one left behind (the server died in between) is resolved by
 * {@link recoverReservations}: the order exists, so the holds are dropped; or it does not, so
 * the stock is given back. No multi-document transaction is needed, on FerretDB or MongoDB.
 */
export interface ReservationDoc {
  _id: Types.ObjectId;
  user: Types.ObjectId;
  lines: ReservationLineDoc[];
  createdAt: Date;
}

const reservationSchema = new Schema<ReservationDoc>(
  {
    user: { type: Schema.Types.ObjectId, required: true },
    lines: {
      type: [
        new Schema<ReservationLineDoc>({ product: { type: Schema.Types.ObjectId, required: true }, quantity: Number }, { _id: false }),
      ],
      required: true,
    },
  },
  { timestamps: { createdAt: true, updatedAt: false }, versionKey: false, autoIndex: false },
);
reservationSchema.index({ createdAt: 1 });

export const ReservationModel = model<ReservationDoc>('Reservation', reservationSchema);

"""The coordinators' side: ticket cards in their forum group, delivered from the outbox."""

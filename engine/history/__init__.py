"""The record of every launch, behind one store interface (`interface.HistoryStore`)."""

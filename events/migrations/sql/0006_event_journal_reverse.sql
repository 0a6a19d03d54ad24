-- Back to 0005: events are written by segments' own SQL again (its migrations before 0014).
DROP TRIGGER events_from_history ON segments_historyevent;
DROP TRIGGER events_from_segment ON segments_segment;
DROP FUNCTION events_from_history(), events_from_segment();

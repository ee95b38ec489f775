"""`teg monitor --mqtt`: the monitor's live values on an MQTT broker, with Home Assistant's
discovery and, with --mqtt-control, commands back.

- `topics`: the topic layout and `Message` (what is published), with the checks that the
  base topic and gateway names are safe topic levels;
- `discovery`: Home Assistant's discovery configs, the state documents and their removal;
- `commands`: a command message to `Setpoints`, and its application through the monitor's
  own validated change path;
- `bridge`: the broker connection (publishing, last will, subscriptions, reconnects).

All but `bridge` are pure: they build and read messages, they never touch the network.
"""

#!/usr/bin/python3
"""tests/env/openstack.d/fake-ovs-agent.py: a hand-written stand-in for
neutron-openvswitch-agent.

The test environment has no Open vSwitch (no kernel datapath, no ovsdb-server), so the real
agent cannot run. Neutron's ML2 openvswitch mechanism driver only binds a port to a host
where a live "Open vSwitch agent" reports suitable bridge mappings / tunnel types, and a
port only turns ACTIVE when that agent says its device is up. This process speaks the same
RPC as the real agent (neutron.agent.rpc over oslo.messaging/RabbitMQ):

  * report_state every [agent] report_interval seconds with agent_type "Open vSwitch
    agent", binary neutron-openvswitch-agent, host = the nova-compute host, bridge
    mappings physnet1:br-ex and tunnel type vxlan on 127.0.0.1;
  * listens on the q-agent-notifier-port-update/-delete fanouts, as the agent did before
    its resource cache, and calls update_device_list(devices_up=...) for every port bound
    to its host, so Neutron marks it ACTIVE (and tells Nova network-vif-plugged);
  * every report it also sweeps get_ports_by_vnic_type_and_host for bound ports that are
    not ACTIVE yet, in case a notification was missed.

No data plane: nothing is plugged anywhere.

Usage: fake-ovs-agent.py --config-file neutron.conf [--host HOST]
"""
import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from neutron_lib.agent import topics  # noqa: E402
from neutron_lib import constants as n_const  # noqa: E402
from neutron_lib import context  # noqa: E402
from oslo_config import cfg  # noqa: E402
from oslo_log import log as logging  # noqa: E402
import oslo_messaging  # noqa: E402
from oslo_service import loopingcall  # noqa: E402

from neutron.agent import rpc as agent_rpc  # noqa: E402
from neutron.common import config as common_config  # noqa: E402
from neutron.conf.agent import common as agent_config  # noqa: E402

LOG = logging.getLogger("fake-ovs-agent")
BRIDGE_MAPPINGS = {"physnet1": "br-ex"}


class FakeOVSAgent(object):
    # The RPC version neutron-openvswitch-agent's endpoint answers to.
    target = oslo_messaging.Target(version="1.7")

    def __init__(self, host):
        self.host = host
        self.agent_id = "ovs-agent-%s" % host
        self.context = context.get_admin_context_without_session()
        self.plugin_rpc = agent_rpc.PluginApi(topics.PLUGIN)
        self.state_rpc = agent_rpc.PluginReportStateAPI(topics.REPORTS)
        self.agent_state = {
            "binary": n_const.AGENT_PROCESS_OVS,
            "host": host,
            "topic": n_const.L2_AGENT_TOPIC,
            "agent_type": n_const.AGENT_TYPE_OVS,
            "start_flag": True,
            "configurations": {
                "bridge_mappings": BRIDGE_MAPPINGS,
                "tunnel_types": [n_const.TYPE_VXLAN],
                "tunneling_ip": "127.0.0.1",
                "integration_bridge": "br-int",
                "l2_population": False,
                "arp_responder_enabled": False,
                "enable_distributed_routing": False,
                "datapath_type": "system",
                "ovs_hybrid_plug": False,
                "devices": 0,
                "extensions": [],
            },
        }
        self.up = set()

    # --- RPC endpoint: what the server casts to L2 agents ------------------------------
    def port_update(self, context, **kwargs):
        port = kwargs.get("port") or {}
        if port.get("binding:host_id") == self.host and port.get("id"):
            eventlet.spawn_n(self.devices_up, [port["id"]])

    def port_delete(self, context, **kwargs):
        self.up.discard(kwargs.get("port_id"))

    def network_update(self, context, **kwargs):
        pass

    def network_delete(self, context, **kwargs):
        pass

    def binding_activate(self, context, **kwargs):
        if kwargs.get("host") == self.host and kwargs.get("port_id"):
            eventlet.spawn_n(self.devices_up, [kwargs["port_id"]])

    def binding_deactivate(self, context, **kwargs):
        pass

    # --- agent side -----------------------------------------------------------------------
    def devices_up(self, ids):
        try:
            res = self.plugin_rpc.update_device_list(self.context, ids, [], self.agent_id,
                                                     self.host)
            self.up.update(res.get("devices_up", []))
            if res.get("failed_devices_up"):
                LOG.warning("devices not set up: %s", res["failed_devices_up"])
            else:
                LOG.info("devices up: %s", ", ".join(ids))
        except Exception:
            LOG.exception("update_device_list failed")

    def sweep(self):
        ports = self.plugin_rpc.get_ports_by_vnic_type_and_host(
            self.context, "normal", self.host)
        down = [p["id"] for p in ports
                if p.get("status") != n_const.PORT_STATUS_ACTIVE
                and p.get("device_owner", "").startswith("compute:")]
        self.agent_state["configurations"]["devices"] = len(ports)
        if down:
            self.devices_up(down)

    def report(self):
        try:
            self.state_rpc.report_state(self.context, self.agent_state, True)
            self.agent_state.pop("start_flag", None)
        except oslo_messaging.MessagingTimeout:
            LOG.warning("no answer to report_state yet: is neutron-server up?")
            return
        except Exception:
            LOG.exception("report_state failed")
            return
        try:
            self.sweep()
        except Exception:
            LOG.exception("port sweep failed")


def main():
    common_config.register_common_config_options()
    agent_config.register_agent_state_opts_helper(cfg.CONF)
    common_config.init(sys.argv[1:])
    common_config.setup_logging()
    agent = FakeOVSAgent(cfg.CONF.host)
    agent_rpc.create_consumers([agent], topics.AGENT, [
        [topics.PORT, topics.UPDATE],
        [topics.PORT, topics.DELETE],
        [topics.NETWORK, topics.UPDATE],
        [topics.NETWORK, topics.DELETE],
        [topics.PORT_BINDING, topics.ACTIVATE],
        [topics.PORT_BINDING, topics.DEACTIVATE],
    ])
    LOG.info("fake Open vSwitch agent for host %s, reporting every %s s",
             agent.host, cfg.CONF.AGENT.report_interval)
    loop = loopingcall.FixedIntervalLoopingCall(agent.report)
    loop.start(interval=cfg.CONF.AGENT.report_interval, initial_delay=0).wait()


if __name__ == "__main__":
    main()

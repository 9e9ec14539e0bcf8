from tests.integration.conftest import redis_client as redis_client
from tests.integration.conftest import redis_server as redis_server

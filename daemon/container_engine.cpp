#include "daemon/container_engine.hpp"

import t from 'tap';
import { SqlState } from '../../src/protocol/sqlstate.js';
t.equal(SqlState.ProtocolViolation, '08P01');

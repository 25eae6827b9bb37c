-- Drives smtpscope-milter stage by stage with miltertest, without Postfix.
-- The socket comes from SMTPSCOPE_MILTER_SOCKET; the HELO to send (hostile
-- on purpose) from SMTPSCOPE_HELO. Any unexpected reply is an error.
local socket = os.getenv("SMTPSCOPE_MILTER_SOCKET")
local helo = os.getenv("SMTPSCOPE_HELO")

local conn = mt.connect("unix:" .. socket, 40, 0.25)
if conn == nil then error("cannot connect to " .. socket) end

local function expect_continue(what)
  if mt.getreply(conn) ~= SMFIR_CONTINUE then error(what .. ": expected continue") end
end

mt.macro(conn, SMFIC_CONNECT, "{client_port}", "40404", "{daemon_addr}", "198.51.100.1",
         "{daemon_port}", "25", "{client_ptr}", "client.miltertest.example")
if mt.conninfo(conn, "client.miltertest.example", "192.0.2.77") ~= nil then error("conninfo") end
expect_continue("connect")

if mt.helo(conn, helo) ~= nil then error("helo") end
expect_continue("helo")

-- Transaction 1: one recipient rejected by the MTA, one accepted, then RSET.
if mt.mailfrom(conn, "<clerk@corp.example>", "SIZE=1000") ~= nil then error("mail") end
expect_continue("mail")
mt.macro(conn, SMFIC_RCPT, "{rcpt_mailer}", "error", "{rcpt_host}", "5.7.1",
         "{rcpt_addr}", "Recipient address rejected: no such user here")
if mt.rcptto(conn, "<nobody@corp.example>") ~= nil then error("rcpt 1") end
expect_continue("rcpt 1")
mt.macro(conn, SMFIC_RCPT, "{rcpt_mailer}", "smtp", "{rcpt_host}", "corp.example",
         "{rcpt_addr}", "boss@corp.example")
if mt.rcptto(conn, "<boss@corp.example>") ~= nil then error("rcpt 2") end
expect_continue("rcpt 2")
if mt.abort(conn) ~= nil then error("abort") end

-- Transaction 2: delivered.
if mt.mailfrom(conn, "<clerk@corp.example>") ~= nil then error("mail 2") end
expect_continue("mail 2")
-- miltertest sends macros only with CONNECT/HELO/MAIL/RCPT; libmilter's
-- lookup searches back from DATA and EOM to the RCPT macros.
mt.macro(conn, SMFIC_RCPT, "i", "MT0001", "{rcpt_mailer}", "smtp")
if mt.rcptto(conn, "<boss@corp.example>") ~= nil then error("rcpt 3") end
expect_continue("rcpt 3")
if mt.data(conn) ~= nil then error("data") end
expect_continue("data")
if mt.header(conn, "Subject", "not recorded") ~= nil then error("header 1") end
if mt.header(conn, "X-Mailer", "miltertest 1.0") ~= nil then error("header 2") end
-- no mt.eoh(): the milter negotiated SMFIP_NOEOH, so an MTA sends no EOH
if mt.bodystring(conn, "0123456789\r\n") ~= nil then error("body") end
if mt.eom(conn) ~= nil then error("eom") end
expect_continue("eom")

mt.disconnect(conn)
